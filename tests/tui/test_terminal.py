"""Smoke test in a real terminal: tmux runs `loratui`, keys are sent, the screen is read with capture-pane."""

import time

import pytest

from .conftest import add_run, script_events
from .tmux import needs_tmux

pytestmark = needs_tmux


def test_dashboard_runs_in_tmux(db, tmux):
    run_dir = add_run(db, "20250104-cpu", name="cpu check", status="finished", steps=30, total=30, loss=0.12)
    script_events(run_dir, 30, total=30, end="run_finished")
    (run_dir / "run.log").write_text("saved the adapter\n")
    tmux.start("")
    screen = tmux.wait_for("cpu check")
    assert "finished" in screen and "30/30" in screen
    tmux.keys("Enter")
    screen = tmux.wait_for("loss (smoothing")
    assert "process RSS" in screen and "step 30/30" in screen
    tmux.keys("4")
    tmux.wait_for("No adapters in the library yet")
    tmux.keys("q")
    tmux.wait_for("EXITED 0")


def test_screen_flag_in_tmux(tmux):
    tmux.start("--screen library")
    tmux.wait_for("No adapters in the library yet")
    tmux.keys("q")
    tmux.wait_for("EXITED 0")


@pytest.mark.parametrize("env", ["HF_HUB_OFFLINE=1", "-u HF_HUB_OFFLINE HF_ENDPOINT=http://127.0.0.1:9"],
                         ids=["offline", "hub-unreachable"])
def test_browse_stays_on_screen_and_slash_starts_a_search(tmux, env):
    """Browse once drew textual-image on first show, whose terminal questions came back as keys while Textual
    read them: `ESC[?1;2c` is 1 then 2, the Runs then the Run screen. Nothing leaves the machine here."""
    tmux.start("--screen browse", env=env, size=(140, 45))
    tmux.wait_for("builtin:tiny-sd")
    time.sleep(5)
    screen = tmux.screen()
    assert "builtin:tiny-sd" in screen and "No run selected" not in screen, screen
    tmux.keys("-l", "/acme/tiny")  # in one burst, as typed fast
    screen = tmux.wait_for("acme/tiny")
    assert "/acme/tiny" not in screen, "the `/` that enters the box is not typed into it"
    tmux.keys("Escape")
    tmux.wait_for("/ Search")
    tmux.keys("q")
    tmux.wait_for("EXITED 0")
