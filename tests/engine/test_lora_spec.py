"""[lora] is peft's LoraConfig field for field; targets that match nothing are refused before any model loads."""

import subprocess
import sys

import pytest

from engine.lora_config import peft_config
from engine.spec import parse_spec, spec_errors

BASE = {"name": "x", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
        "train": {"max_steps": 3, "resolution": 32}}
FULL = {
    "rank": 8, "alpha": 16.0, "dropout": 0.1, "init": "gaussian", "target_modules": ["to_q", "to_v"],
    "use_rslora": True, "use_dora": True, "layers_to_transform": [0, 1], "layers_pattern": "blocks",
    "rank_pattern": {"^.*to_q$": 4}, "alpha_pattern": {"^.*to_q$": 2.0},
}


def _spec(**lora):
    return {**BASE, "lora": lora}


def test_every_field_reaches_peft_exactly():
    config = peft_config(parse_spec(_spec(**FULL)).lora, modules_to_save=["head"])
    assert (config.r, config.lora_alpha, config.lora_dropout, config.init_lora_weights) == (8, 16.0, 0.1, "gaussian")
    assert set(config.target_modules) == {"to_q", "to_v"} and config.use_rslora and config.use_dora
    assert (config.layers_to_transform, config.layers_pattern) == ([0, 1], "blocks")
    assert (config.rank_pattern, config.alpha_pattern) == ({"^.*to_q$": 4}, {"^.*to_q$": 2.0})
    assert config.modules_to_save == ["head"] and config.bias == "none"
    assert peft_config(parse_spec(_spec(target_modules="all-linear")).lora).target_modules == "all-linear"


@pytest.mark.parametrize(("lora", "error"), [
    ({"target_modules": "to_q"}, "lora.target_modules: 'to_q' is not allowed (allowed: a list or 'all-linear')"),
    ({"bias": "all"}, "lora.bias: 'all' is not allowed for text-to-image (allowed: none)"),
    ({"modules_to_save": ["conv_out"]}, "lora.modules_to_save: not allowed for text-to-image"),
    ({"init": "pissa"}, "lora.init: 'pissa' is not allowed for text-to-image (allowed: gaussian, default)"),
    ({"rank_pattern": {"q": 1.5}}, "lora.rank_pattern.q: expected an integer (got 1.5)"),
    ({"loftq": {"bits": 16}}, "lora.loftq.bits: must be <= 8 (got 16)"),
])
def test_bad_lora_fields_are_one_line_each(lora, error):
    errors = spec_errors(_spec(**lora))
    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_targets_that_match_nothing_are_refused_before_any_model_loads(tmp_path, builtin_home, monkeypatch):
    from homes import share_builtins

    from engine import builtin

    home = share_builtins(tmp_path / "home", builtin_home)
    monkeypatch.setenv("LORATUI_HOME", str(home))
    builtin.path("builtin:tiny-sd")  # built beforehand: what is watched is the check, not a build
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "x"\n[model]\npretrained = "builtin:tiny-sd"\n[data]\nsource = "builtin:shapes"\n'
                    '[lora]\ntarget_modules = ["query", "value", "to_q"]\n[train]\nmax_steps = 3\nresolution = 32\n')
    script = ("import sys\nfrom loratui.cli import main\ncode = main(['spec', 'validate', sys.argv[1]])\n"
              "print(sorted({'torch', 'diffusers', 'peft'} & set(sys.modules)))\nsys.exit(code)")
    out = subprocess.run([sys.executable, "-c", script, str(spec)], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "LORATUI_HOME": str(home)})
    assert out.returncode == 2 and out.stdout.strip() == "[]", out.stderr
    problem = out.stderr.splitlines()[1].strip()
    assert problem.startswith("lora.target_modules: 'query', 'value' match no layer of builtin:tiny-sd (unet) "
                              "(its layers: ")
    assert "to_q" in problem and "to_out.0" in problem


def test_loftq_settings_reach_peft_or_its_missing_package_is_named():
    from types import SimpleNamespace

    from engine import preflight
    from engine.spec import LoraSection

    lora = LoraSection.model_validate({"target_modules": ["query"], "init": "loftq", "loftq": {"bits": 2, "iter": 3}})
    try:
        import scipy  # noqa: F401  peft's LoftQ needs it
    except ImportError:
        report = preflight.Report()
        spec = SimpleNamespace(lora=lora, train=SimpleNamespace(use_8bit_adam=False),
                               output=SimpleNamespace(report_to="none"))
        preflight._check_packages(spec, report)
        assert report.errors == ["lora.init: needs the scipy package, which is not installed (pip install scipy)"]
        return
    config = peft_config(lora)
    assert (config.init_lora_weights, config.loftq_config) == ("loftq", {"loftq_bits": 2, "loftq_iter": 3})
