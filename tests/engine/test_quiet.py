"""transformers' torchvision-fallback warning is hidden in built-in builds, and the library deprecations a user can do
nothing about in training processes; other warnings are not. loratui's own calls use the libraries' current names."""

import os
import subprocess
import sys

import pytest

FALLBACK = "requires torchvision (not installed); falling back to"


def test_only_the_torchvision_fallback_warning_is_hidden():
    code = ("import logging, transformers\n"
            "from engine.quiet import hide_torchvision_fallback\n"
            "hide_torchvision_fallback()\n"
            "transformers.CLIPImageProcessor\n"
            "logging.getLogger('transformers.utils.import_utils').warning('another warning stays')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert FALLBACK not in out.stderr and "another warning stays" in out.stderr


def test_building_a_builtin_prints_no_torchvision_warning(tmp_path):
    env = {**os.environ, "LORATUI_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "loratui", "builtin", "path", "tiny-sd"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert FALLBACK not in out.stderr


def _warned(message: str, category: type[Warning], module: str) -> list[str]:
    """What reaches the log of a process that hid the library deprecations, of one warning raised in `module`."""
    import warnings

    from engine.quiet import hide_library_deprecations

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hide_library_deprecations()
        warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)
    return [str(warning.message) for warning in caught]


def test_only_the_known_library_deprecations_are_hidden():
    renamed = "`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing`"
    assert _warned(renamed, FutureWarning, "transformers.modeling_utils") == []
    assert _warned("`gradient_checkpointing_enable` is deprecated", FutureWarning, "transformers.modeling_utils") == []
    # the same words in another category or from another module, and any other deprecation, still show
    assert _warned(renamed, UserWarning, "transformers.modeling_utils") == [renamed]
    assert _warned(renamed, FutureWarning, "engine.train") == [renamed]
    assert _warned("`tp_plan` is deprecated", FutureWarning, "transformers.modeling_utils") == ["`tp_plan` is deprecated"]


@pytest.mark.parametrize("ref", ["builtin:tiny-bert", "builtin:tiny-llama"])
def test_activation_checkpointing_turns_on_without_a_deprecation_warning(ref, builtin_home, monkeypatch):
    import warnings

    from transformers import AutoModel

    from engine import builtin
    from engine.memory import enable_activation_checkpointing

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    model = AutoModel.from_pretrained(builtin.path(ref))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a FutureWarning here would fill every checkpointed run's log
        enable_activation_checkpointing(model)
        assert model.is_activation_checkpointing
