"""The headless progress display of `loratui run`: step/total, loss, lr, it/s, ETA, memory."""

import json
import time
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class RunProgress:
    def __init__(self, run_id: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        # Not a terminal (a log file, CI): one plain line per event, never cut to a width nor wrapped.
        self.plain = not self.console.is_terminal
        if self.plain:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), TextColumn("step {task.completed:.0f}/{task.fields[steps]}"),
            BarColumn(), TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[speed]}"), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[memory]}"), console=self.console, transient=False)
        self.task = self.progress.add_task(run_id, total=None, steps="?", loss="-", lr="-", speed="- it/s", memory="")
        self.progress.start()
        self._started = time.monotonic()

    def update(self, events: list[dict]) -> None:
        if self.plain:
            for event in events:
                line = self._line(event)
                if line:
                    print(line, file=self.console.file, flush=True)
            return
        for event in events:
            kind = event["type"]
            if kind == "run_started":
                self.progress.update(self.task, total=event["total_steps"], steps=event["total_steps"],
                                     completed=event["resume_step"])
            elif kind == "step":
                parts = step_parts(event)
                self.progress.update(self.task, completed=event["step"], total=event["total_steps"],
                                     loss=parts.get("loss", "-"), lr=parts["lr"], speed=parts.get("speed", "- it/s"),
                                     memory=parts.get("memory", ""))
            elif kind == "checkpoint_saved":
                self.progress.console.print(f"checkpoint: {event['path']}")
            elif kind == "sample_saved":
                self.progress.console.print(f"sample: {event['path']}")
            elif kind == "eval":
                self.progress.console.print(self._line(event))
            elif kind == "log":
                self.progress.console.print(f"{event['level']}: {event['message']}")

    def _line(self, event: dict) -> str | None:
        kind = event["type"]
        if kind == "run_started":
            return f"started {event['run_id']}: {event['total_steps']} steps on {event['device']}"
        if kind == "step":
            return step_line(event)
        if kind == "checkpoint_saved":
            return f"checkpoint saved: {event['path']}"
        if kind == "sample_saved":
            return f"sample saved: {event['path']}"
        if kind == "eval":
            return f"eval at step {event['step']}: {metrics_text(event['metrics'])}" + (" (best so far)" if event["best"] else "")
        if kind == "log":
            return f"{event['level']}: {event['message']}"
        return None

    def close(self, row: dict) -> None:
        if not self.plain:
            self.progress.stop()
        loss = f", loss {row['last_loss']:.4f}" if row.get("last_loss") is not None else ""
        line = f"{row['id']}: {row['status']} at step {row['step']}/{row['total_steps'] or '?'}{loss}"
        summary = json.loads(row.get("summary") or "{}")
        if summary.get("metrics"):  # the final figures beside the base model's, so a user sees what was learnt
            line += f"\n  eval {metrics_text(summary['metrics'], summary.get('base_metrics'))}"
        if self.plain:
            print(line, file=self.console.file, flush=True)
        else:
            self.console.print(line)


def step_parts(event: dict) -> dict[str, str]:
    """A step event's figures as every face writes them; loss, speed, eta and memory only when the event has them."""
    parts = {"step": f"{event['step']}/{event['total_steps']}"}
    if event.get("loss") is not None:
        parts["loss"] = f"{event['loss']:.4f}"
    parts["lr"] = f"{event['lr']:.1e}"
    if event.get("step_time"):
        left = max(event["total_steps"] - event["step"], 0) * event["step_time"]
        parts["speed"] = f"{1 / event['step_time']:.1f} it/s"
        parts["eta"] = str(timedelta(seconds=round(left)))
    memory = _memory(event.get("memory") or {})
    if memory:
        parts["memory"] = memory
    return parts


def step_line(event: dict) -> str:
    """step 10/200 loss 0.5460 lr 9.9e-04 10.9 it/s eta 0:00:15 rss 0.59 GiB"""
    return " ".join(value if name in ("speed", "memory") else f"{name} {value}"
                    for name, value in step_parts(event).items())


def metrics_text(metrics: dict, base: dict | None = None) -> str:
    """accuracy 0.9500 (base 0.5000), eval_loss 0.2100 (base 0.6931)"""
    def one(name: str, value: float) -> str:
        was = f" (base {base[name]:.4f})" if base and name in base else ""
        return f"{name} {value:.4f}{was}"

    return ", ".join(one(name, value) for name, value in metrics.items())


def _memory(memory: dict) -> str:
    if memory.get("kind") == "rss":
        return f"rss {memory['rss'] / 2**30:.2f} GiB"
    devices = memory.get("devices", [])
    return " ".join(f"gpu{d['index']} {d['allocated'] / 2**30:.1f}/{d['peak'] / 2**30:.1f} GiB" for d in devices)
