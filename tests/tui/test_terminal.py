"""Smoke test in a real terminal: tmux runs `loratui`, keys are sent, the screen is read with capture-pane."""

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
