"""A long causal-LM run in the dashboard, each figure against its goal, measured side by side in one run.

A synthetic events.jsonl of --events step events (every field engine/events.py writes for a step, process
RSS as the memory kind, an eval every 1000 steps, a checkpoint every 5000, then run_finished) is ingested
into a fresh library.db, timed. Then the real dashboard, in a process of its own driven by a Textual pilot,
opens the finished run: the time until the loss chart shows its last step, the process's peak resident
memory, and the CPU it uses over an idle window on that finished run.

Goals: ingest <= 3 s, chart <= 1 s, peak RSS < 300 MB, idle <= 1% of a core (at 200,000 events).

    python bench/long_run.py [--events 200000] [--idle 5]
"""

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUN_ID = "long-causal-lm"
T0 = 1_736_000_000.0
GOALS = {"ingest_s": 3.0, "chart_s": 1.0, "peak_rss_mb": 300.0, "idle_cpu_pct": 1.0}


def write_events(path: Path, steps: int) -> None:
    """The stream a causal-LM run that logs every step writes, in EventWriter's compact format."""
    def line(seq: int, when: float, kind: str, **fields) -> str:
        event = {"v": 1, "seq": seq, "time": when, "type": kind, **fields}
        return json.dumps(event, separators=(",", ":")) + "\n"

    seq = 1
    lines = [line(seq, T0, "run_started", run_id=RUN_ID, name=RUN_ID, task="causal-lm", total_steps=steps,
                  num_processes=1, device="cuda", mixed_precision="bf16", resume_step=0)]
    for step in range(1, steps + 1):
        when = T0 + 1 + step * 0.25
        loss = 2.5 * math.exp(-step / (steps / 4)) + 0.6 + 0.05 * math.sin(step / 7) + (1.5 if step % 9973 == 0 else 0)
        seq += 1
        lines.append(line(seq, when, "step", step=step, total_steps=steps, epoch=round(step / 5000, 4), loss=loss,
                          lr=2e-4 * min(1.0, step / 500), grad_norm=0.8 + 0.1 * math.cos(step / 11),
                          samples_per_s=32.0 + step % 5, step_time=0.25,
                          memory={"kind": "rss", "rss": 3.2e9 + (step % 1000) * 1e5}))
        if step % 1000 == 0:
            seq += 1
            lines.append(line(seq, when, "eval", step=step, epoch=round(step / 5000, 4),
                              metrics={"eval_loss": loss + 0.1, "perplexity": math.exp(loss + 0.1)}, best=True))
        if step % 5000 == 0:
            seq += 1
            lines.append(line(seq, when, "checkpoint_saved", step=step, path=f"checkpoints/step-{step:06d}"))
    seq += 1
    lines.append(line(seq, T0 + 2 + steps * 0.25, "run_finished", step=steps, adapter_path="adapter",
                      final_loss=loss, metrics=None, base_metrics=None))
    path.write_text("".join(lines))


def build_run(home: Path, steps: int) -> tuple[float, float, int]:
    """The run in a fresh library: (seconds to ingest it, CPU seconds of that, step rows written)."""
    from loratui.db import runs as table
    from loratui.db.library import open_db
    from loratui.runs.ingest import ingest

    run_dir = home / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    write_events(run_dir / "events.jsonl", steps)
    db = open_db()
    with db.conn:
        table.insert(db, RUN_ID, {"name": RUN_ID, "task": "causal-lm", "dir": str(run_dir), "spec": 'name = "long"\n',
                                  "status": "running", "total_steps": steps})
    start, cpu = time.perf_counter(), time.process_time()
    ingest(db, run_dir, RUN_ID)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = db.execute("SELECT count(*) FROM steps WHERE run_id = ?", [RUN_ID]).fetchone()[0]
    db.close()
    return seconds, cpu, rows


async def drive_dashboard(steps: int, idle_s: float) -> dict:
    """In the dashboard's own process: open the run, wait for its chart, then sit idle on it."""
    from loratui.app import LoratuiApp
    from loratui.widgets.charts import LossChart

    app = LoratuiApp()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        app.open_run(RUN_ID)
        while True:
            charts = app.screen.query(LossChart)
            if charts and charts.first().last_step == steps:
                break
            await pilot.pause(0.01)
        await pilot.pause()  # the frame with the chart drawn
        chart_s = time.perf_counter() - start
        await pilot.pause(min(2.0, idle_s))  # what follows the first view (a redraw timer, the poll after) settles
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_s)
        idle = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return {"chart_s": chart_s, "peak_rss_mb": peak_rss_kb() / 1024, "idle_cpu_pct": 100 * idle}


def peak_rss_kb() -> int:
    """This process's peak resident memory. ru_maxrss would carry the parent's over exec on Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="step events in the run")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle window")
    parser.add_argument("--dashboard", action="store_true", help=argparse.SUPPRESS)  # the measured process
    args = parser.parse_args()
    if args.dashboard:
        print(json.dumps(asyncio.run(drive_dashboard(args.events, args.idle))))
        return
    with tempfile.TemporaryDirectory(prefix="loratui-bench-") as home:
        os.environ["LORATUI_HOME"] = home
        ingest_s, ingest_cpu, rows = build_run(Path(home), args.events)
        out = subprocess.run([sys.executable, __file__, "--dashboard", "--events", str(args.events),
                              "--idle", str(args.idle)], capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"the dashboard process failed:\n{out.stderr[-3000:]}")
        figures = {"ingest_s": ingest_s, **json.loads(out.stdout.strip().splitlines()[-1])}
    print(f"{args.events:,} step events, {rows:,} step rows; ingest used {ingest_cpu:.2f} s of CPU "
          f"(on a busy machine, wall time is more)")
    report = [("ingest", "ingest_s", "s", 2), ("chart shown", "chart_s", "s", 2),
              ("peak RSS", "peak_rss_mb", "MB", 0), ("idle CPU", "idle_cpu_pct", "% of a core", 2)]
    for label, key, unit, digits in report:
        verdict = "ok" if figures[key] <= GOALS[key] else "OVER"
        print(f"{label:12} {figures[key]:8.{digits}f} {unit:12} goal <= {GOALS[key]:g}  {verdict}")


if __name__ == "__main__":
    main()
