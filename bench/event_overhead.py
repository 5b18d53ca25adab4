"""Training steps/s with the event stream and an attached dashboard ÷ without, side by side. Goal: ≥ 0.98.

"with": step events at the engine's default rate (train.log_every_steps = 10; `--every 1` for the harshest
case) while `loratui` runs in a pseudo-terminal on that run's detail screen (live charts, log, progress),
its output read as a terminal would. "without": one step event, at the last step, and no dashboard.
Both train builtin:tiny-sd on builtin:shapes through `loratui run` (accelerate launch, supervisor
ingesting into library.db); steps/s is the training loop's, from the run_started event to the last
step event. Each round runs both back to back (alternating which goes first) and the ratio is the median
of the rounds' ratios, so load from other work on a shared machine hits both sides of each pair. The
dashboard's own CPU use while watching is printed too: on a busy machine it is the steadier figure.

    python bench/event_overhead.py [--steps 400] [--rounds 3] [--every 10] [--resolution 32]
"""

import argparse
import fcntl
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path


def spec(name: str, args, every: int) -> str:
    return f"""name = "{name}"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = {args.resolution}
batch_size = 4
max_steps = {args.steps}
log_every_steps = {every}
checkpointing_steps = 0
"""


class Dashboard:
    """`loratui` in a pseudo-terminal; a thread reads its output, as a terminal would, and looks for text."""

    def __init__(self, env: dict) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(sys.executable, [sys.executable, "-m", "loratui"], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 1200, 800))
        self.seen = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    chunk = os.read(self.fd, 1 << 16)
                    if b"\x1b[c" in chunk:  # answer Device Attributes like a terminal without Sixel
                        os.write(self.fd, b"\x1b[?62;22c")
                    with self.lock:
                        self.seen = (self.seen + chunk)[-(1 << 20):]
            except OSError:
                return

    def wait_for(self, text: bytes, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if text in self.seen:
                    self.seen = b""
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the dashboard never showed {text!r}")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        os.write(self.fd, b"q")
        time.sleep(0.5)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def train(name: str, args, every: int, env: dict, attach: bool, workdir: Path) -> float:
    spec_path = workdir / f"{name}.toml"
    spec_path.write_text(spec(name, args, every))
    dashboard = Dashboard(env) if attach else None
    try:
        if dashboard:
            dashboard.wait_for(b"1 Runs")
        proc = subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(spec_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if dashboard:
            dashboard.wait_for(name.encode())  # listed, newest first: move the cursor up to it and open it
            os.write(dashboard.fd, b"\x1b[A" * 20 + b"\r")
            dashboard.wait_for(f"{name} · running".encode())
        started, cpu = time.monotonic(), dashboard.cpu_seconds() if dashboard else 0.0
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"training {name} failed (exit {proc.returncode})")
        if dashboard:
            share = (dashboard.cpu_seconds() - cpu) / (time.monotonic() - started)
            print(f"  the dashboard used {100 * share:.1f}% of one core while watching", flush=True)
    finally:
        if dashboard:
            dashboard.close()
    run_id = out.strip().splitlines()[-1]
    events = [json.loads(line) for line in (Path(env["LORATUI_HOME"]) / "runs" / run_id / "events.jsonl").open()]
    started = next(e for e in events if e["type"] == "run_started")
    last = [e for e in events if e["type"] == "step"][-1]
    return last["step"] / (last["time"] - started["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--every", type=int, default=10, help="log_every_steps with the dashboard attached")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-events-") as workdir:
        measure(args, Path(workdir))


def measure(args, workdir: Path) -> None:
    env = {**os.environ, "LORATUI_HOME": str(workdir / "home"), "TERM": "xterm-256color"}
    subprocess.run([sys.executable, "-m", "loratui", "builtin", "path", "tiny-sd"], env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "loratui", "builtin", "path", "shapes"], env=env, check=True,
                   capture_output=True)
    rates: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(args.rounds):
        order = ["without", "with"] if round_ % 2 == 0 else ["with", "without"]
        for config in order:
            attach = config == "with"
            rate = train(f"bench-{config}-{round_}", args, args.every if attach else args.steps, env, attach, workdir)
            rates[config].append(rate)
            print(f"round {round_ + 1}: {config:<7} dashboard/events: {rate:6.2f} steps/s", flush=True)
    best = {config: max(values) for config, values in rates.items()}
    paired = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
    print(f"tiny-sd, {args.resolution} px, batch 4, {args.steps} steps, {args.rounds} rounds")
    print(f"  without (no step events until the last, no dashboard): best {best['without']:.2f}  "
          f"median {statistics.median(rates['without']):.2f} steps/s")
    print(f"  with (a step event every {args.every}, dashboard attached): best {best['with']:.2f}  "
          f"median {statistics.median(rates['with']):.2f} steps/s")
    ratio = statistics.median(paired)
    print(f"  ratio, median of the rounds' with/without: {ratio:.3f} (each: {', '.join(f'{r:.3f}' for r in paired)});"
          f" best/best {best['with'] / best['without']:.3f}; goal >= 0.98: {'ok' if ratio >= 0.98 else 'MISSED'}")


if __name__ == "__main__":
    main()
