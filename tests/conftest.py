"""Every test runs with LORATUI_HOME in a temp dir and the Hub unreachable by accident."""

import os
import sys

import pytest


@pytest.fixture(autouse=True)
def loratui_home(tmp_path, monkeypatch):
    home = tmp_path / "loratui-home"
    monkeypatch.setenv("LORATUI_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return home


@pytest.fixture(scope="session")
def builtin_home(tmp_path_factory):
    """A LORATUI_HOME shared by the whole session, so each built-in is built once."""
    return tmp_path_factory.mktemp("builtin-home")


@pytest.fixture(autouse=True, scope="module")
def fresh_accelerate_state():
    """A test module that builds an Accelerator in-process leaves accelerate's process-wide state behind; the
    next module (asking for bf16, say) must start from none."""
    yield
    if "accelerate.state" in sys.modules:
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()
