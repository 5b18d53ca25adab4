"""tmux as a real terminal for the dashboard: start `loratui`, send keys, read the screen (capture-pane)."""

import shutil
import subprocess
import sys
import time

import pytest

needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux; .ci/run installs it)"
)


class Tmux:
    def __init__(self, socket, home) -> None:
        self.base = ["tmux", "-S", str(socket)]
        self.home = home

    def start(self, args: str, env: str = "", size: tuple[int, int] = (100, 30)) -> None:
        """`env`: `env` arguments before LORATUI_HOME (`-u NAME` unsets one, `NAME=value` sets one)."""
        command = f"env {env} LORATUI_HOME={self.home} {sys.executable} -m loratui {args}; echo EXITED $?; sleep 60"
        width, height = size
        subprocess.run([*self.base, "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command],
                       check=True)

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
