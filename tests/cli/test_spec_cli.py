"""`loratui spec new|convert|validate` from the command line."""

import importlib.util
import os
import subprocess
import sys
import tomllib

import pytest

from engine.spec import parse_spec

COMMAND = ["accelerate", "launch", "--mixed_precision=bf16", "train_text_to_image_lora.py",
           "--pretrained_model_name_or_path=builtin:tiny-sd", "--dataset_name=builtin:shapes", "--resolution=32",
           "--center_crop", "--train_batch_size=2", "--max_train_steps=5", "--rank=8", "--report_to=none",
           "--enable_xformers_memory_efficient_attention"]


def cli(*args, home=None):
    env = {**os.environ, **({"LORATUI_HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "loratui", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_spec_new_prints_a_valid_commented_template():
    out = cli("spec", "new", "--family", "sdxl")
    assert out.returncode == 0
    spec = parse_spec(tomllib.loads(out.stdout))
    assert spec.model.pretrained == "stabilityai/stable-diffusion-xl-base-1.0" and spec.train.resolution == 1024
    assert "# Inner dimension of the LoRA matrices" in out.stdout


def test_spec_convert_prints_or_writes_the_spec_and_notes_dropped_flags(tmp_path):
    out = cli("spec", "convert", "--", *COMMAND)
    assert out.returncode == 0, out.stderr
    spec = parse_spec(tomllib.loads(out.stdout))
    assert (spec.lora.rank, spec.lora.alpha, spec.train.mixed_precision, spec.train.max_steps) == (8, 8.0, "bf16", 5)
    assert "note: --enable_xformers_memory_efficient_attention dropped" in out.stderr
    target = tmp_path / "converted.toml"
    written = cli("spec", "convert", "--out", str(target), "--", *COMMAND)
    assert written.returncode == 0 and written.stdout == "" and tomllib.loads(target.read_text()) == tomllib.loads(
        out.stdout)


def test_converted_spec_validates_against_the_builtins(tmp_path, builtin_home):
    target = tmp_path / "converted.toml"
    assert cli("spec", "convert", "--out", str(target), "--", *COMMAND).returncode == 0
    out = cli("spec", "validate", str(target), home=builtin_home)
    assert out.returncode == 0, out.stderr
    assert "is valid (text-to-image, sd1 model, 48 rows of builtin:shapes)" in out.stdout


def test_a_seed_command_without_report_to_converts_to_a_spec_that_validates(tmp_path, builtin_home):
    """The script's default tracker (tensorboard) is dropped when it is not installed, with a note."""
    target = tmp_path / "seed.toml"
    out = cli("spec", "convert", "--out", str(target), "--", "accelerate", "launch", "train_text_to_image_lora.py",
              "--pretrained_model_name_or_path=builtin:tiny-sd", "--dataset_name=builtin:shapes",
              "--max_train_steps=5", home=builtin_home)
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert text.startswith("# loratui run spec converted from a diffusers training command.")
    assert "# Inner dimension of the LoRA matrices" in text and "(allowed: none, tensorboard, wandb)" in text
    if importlib.util.find_spec("tensorboard") is None:
        assert 'report_to = "none"' in text
        assert "note: the script reports to tensorboard by default, but tensorboard is not installed" in out.stderr
    checked = cli("spec", "validate", str(target), home=builtin_home)
    assert checked.returncode == 0, checked.stderr
    assert "is valid (text-to-image, sd1 model, 48 rows of builtin:shapes)" in checked.stdout


def test_spec_convert_without_a_command_explains_itself():
    out = cli("spec", "convert")
    assert out.returncode == 2 and out.stderr.startswith("error: no command to convert")
    assert "hint: loratui spec convert -- accelerate launch" in out.stderr


EVERY_PROBLEM = """name = "all-at-once"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
caption_column = "caption"
[lora]
rank = 0
[train]
resolution = 63
max_steps = 0
num_epochs = 0
batch_size = "4"
colour = "red"
lerning_rate = 1e-4
"""
EVERY_MESSAGE = ["train.batch_size: expected an integer (got '4')", "train.colour: unknown field (allowed: ",
                 "train.lerning_rate: unknown field (did you mean learning_rate?)",
                 "lora.rank: must be > 0 (got 0)", "train.max_steps: set max_steps or num_epochs (both are 0)",
                 "train.resolution: 63 is not a multiple of the VAE scale factor",
                 "data.caption_column: no column 'caption' in builtin:shapes"]


@pytest.mark.parametrize("command", [["spec", "validate"], ["run", "--spec"]])
def test_every_spec_problem_is_reported_at_once(tmp_path, builtin_home, command):
    path = tmp_path / "bad.toml"
    path.write_text(EVERY_PROBLEM)
    out = cli(*command, str(path), home=builtin_home)
    assert out.returncode == 2, out.stderr
    assert f"error: {path} is not valid (7 problems):" in out.stderr and "Traceback" not in out.stderr
    for message in EVERY_MESSAGE:
        assert message in out.stderr
    assert not list((builtin_home / "runs").glob("all-at-once*"))


def test_validate_says_a_hub_dataset_it_cannot_reach_was_not_checked(tmp_path, builtin_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = tmp_path / "hub.toml"
    path.write_text('name = "hub"\n[model]\npretrained = "builtin:tiny-sd"\n[data]\nsource = "someone/captions"\n'
                    "[train]\nresolution = 32\nmax_steps = 3\n")
    out = cli("spec", "validate", str(path), home=builtin_home)
    assert out.returncode == 0, out.stderr
    assert "unchecked rows of someone/captions" in out.stdout
    assert "note: data.source: someone/captions (columns, rows) not checked: HF_HUB_OFFLINE is set" in out.stderr


def test_validate_checks_every_file_and_fails_if_any_failed(tmp_path, builtin_home):
    good = tmp_path / "good.toml"
    good.write_text('name = "good"\n[model]\npretrained = "builtin:tiny-sd"\n[data]\nsource = "builtin:shapes"\n'
                    "[train]\nresolution = 32\nmax_steps = 3\n")
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("resolution = 32", "resolution = 33"))
    missing = tmp_path / "missing.toml"
    out = cli("spec", "validate", str(bad), str(good), str(missing), home=builtin_home)
    assert out.returncode == 2, out.stderr
    assert out.stdout.splitlines() == [f"ok: {good} is valid (text-to-image, sd1 model, 48 rows of builtin:shapes)"]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith(f"error: {bad}: preflight found 1 problem")
    assert "train.resolution: 33 is not a multiple of the VAE scale factor" in out.stderr
    assert errors[1] == f"error: spec file not found: {missing}"
    assert out.stderr.splitlines()[-1] == "2 of 3 specs are not valid" and "Traceback" not in out.stderr
    assert cli("spec", "validate", str(good), str(good), home=builtin_home).returncode == 0


def test_spec_convert_fits_the_warmup_to_the_run_and_names_the_run_apart_from_its_folder(tmp_path):
    from homes import inline

    seed = ["--", "accelerate", "launch", "train_text_to_image_lora.py",
            "--pretrained_model_name_or_path=builtin:tiny-sd", "--dataset_name=lambdalabs/naruto-blip-captions",
            "--max_train_steps=20", "--output_dir=runs/out", "--report_to=none"]

    def converted(*flags):
        out = inline(tmp_path, "spec", "convert", *seed, *flags)
        assert out.returncode == 0, out.stderr
        return parse_spec(tomllib.loads(out.stdout)), out.stderr

    # The script's constant schedule ignores its default warm-up of 500 steps: none, silently.
    spec, err = converted()
    assert (spec.train.lr_scheduler, spec.train.lr_warmup_steps, spec.train.max_steps) == ("constant", 0, 20)
    assert "warmup" not in err
    # The run is named after its data (or its Hub repo), never its folder, which is only where it goes.
    assert (spec.name, spec.output.dir) == ("naruto-blip-captions-lora", "runs/out")
    assert converted("--hub_model_id=me/my-naruto")[0].name == "my-naruto"
    # A schedule that warms up gets a warm-up shorter than the run, and a note on stderr says so.
    spec, err = converted("--lr_scheduler=cosine")
    assert spec.train.lr_warmup_steps == 2
    assert ("note: the script's default lr_warmup_steps (500) is not below --max_train_steps=20, so the learning "
            "rate would never peak: lr_warmup_steps = 2 (a tenth of the run)") in err
    spec, err = converted("--lr_scheduler=cosine", "--lr_warmup_steps=30")
    assert spec.train.lr_warmup_steps == 2 and "note: --lr_warmup_steps=30 is not below" in err
    spec, err = converted("--lr_warmup_steps=5")
    assert spec.train.lr_warmup_steps == 0
    assert "note: --lr_warmup_steps=5 dropped: the constant schedule has no warm-up" in err
