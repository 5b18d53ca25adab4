"""Smoke test in a real terminal: tmux runs `loratui`, keys are sent, the screen is read with capture-pane."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from .conftest import add_run, script_events

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux; .ci/run installs it)"
)


class Tmux:
    def __init__(self, socket, home) -> None:
        self.base = ["tmux", "-S", str(socket)]
        self.home = home

    def start(self, args: str) -> None:
        command = f"env LORATUI_HOME={self.home} {sys.executable} -m loratui {args}; echo EXITED $?; sleep 60"
        subprocess.run([*self.base, "new-session", "-d", "-s", "t", "-x", "100", "-y", "30", command], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Bounded polling of another process's screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path, loratui_home):
    # A short socket path: unix socket paths are limited to ~100 bytes.
    socket = f"/tmp/loratui-test-{os.getpid()}-{time.monotonic_ns()}.sock"
    session = Tmux(socket, loratui_home)
    yield session
    session.close()
    if os.path.exists(socket):
        os.unlink(socket)


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
