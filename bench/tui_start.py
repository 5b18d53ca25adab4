"""Time to the dashboard's first frame ÷ a minimal Textual app's, measured side by side. Goal: ≤ 1.5×.

Each app is started in a pseudo-terminal, like a user's; the clock stops when its first screen has been
written (a marker text appears in the output). The bench answers the Device Attributes query the way a
terminal without Sixel does, and stays silent to the Kitty graphics query, so textual-image's start-up
probe costs here what it costs in such a terminal. Runs alternate, so both see the same machine load.

    python bench/tui_start.py [--rounds 7]
"""

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

MINIMAL = (
    "from textual.app import App\n"
    "from textual.widgets import Footer, Header, Static\n"
    "class Minimal(App):\n"
    "    def compose(self):\n"
    "        yield Header()\n"
    "        yield Static('minimal-ready')\n"
    "        yield Footer()\n"
    "Minimal().run()\n"
)
ROWS, COLS, XPIXELS, YPIXELS = 30, 100, 1000, 600
ANSWERS = {b"\x1b[c": b"\x1b[?62;22c", b"\x1b[16t": b"\x1b[6;20;10t"}


def first_frame(argv: list[str], marker: bytes, env: dict, timeout: float = 30.0) -> tuple[float, float | None]:
    """(seconds to the first frame, CPU seconds the process used by then: None where /proc cannot tell)."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, XPIXELS, YPIXELS))
    seen = b""
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([fd], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            seen += chunk
            for query, answer in ANSWERS.items():
                if query in chunk:
                    os.write(fd, answer)
            if marker in seen:
                return time.perf_counter() - start, cpu_seconds(pid)
        raise RuntimeError(f"{argv} never drew {marker!r}; output tail: {seen[-300:]!r}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def cpu_seconds(pid: int) -> float | None:
    """User and system time of a process so far (Linux; in clock ticks, 10 ms): steadier than wall time
    when the machine is shared."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loratui-bench-") as home:
        measure(args, home)


def measure(args, home: str) -> None:
    env = {**os.environ, "LORATUI_HOME": home, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    # Warm the OS file cache for both, so neither pays for a cold disk.
    first_frame([sys.executable, "-c", MINIMAL], b"minimal-ready", env)
    first_frame([sys.executable, "-m", "loratui"], b"1 Runs", env)
    minimal, dashboard = [], []
    for _ in range(args.rounds):
        minimal.append(first_frame([sys.executable, "-c", MINIMAL], b"minimal-ready", env))
        dashboard.append(first_frame([sys.executable, "-m", "loratui"], b"1 Runs", env))
    m, d = statistics.median(t for t, _ in minimal), statistics.median(t for t, _ in dashboard)
    print(f"minimal Textual app  first frame: median {m * 1000:.0f} ms  ({', '.join(f'{t * 1000:.0f}' for t, _ in minimal)})")
    print(f"loratui dashboard    first frame: median {d * 1000:.0f} ms  ({', '.join(f'{t * 1000:.0f}' for t, _ in dashboard)})")
    print(f"ratio {d / m:.2f}x (goal <= 1.5x)")
    if all(cpu is not None for _, cpu in minimal + dashboard):
        mc, dc = statistics.median(c for _, c in minimal), statistics.median(c for _, c in dashboard)
        print(f"CPU used by the first frame: minimal {mc * 1000:.0f} ms, dashboard {dc * 1000:.0f} ms, ratio {dc / mc:.2f}x")


if __name__ == "__main__":
    main()
