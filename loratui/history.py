"""A run's history folded from its events (engine/events.py): series for the charts, throughput, ETA.

Pure data, no I/O: the watcher feeds it events in a worker thread and hands the UI frozen RunViews.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from engine.events import TERMINAL_TYPES

GIB = 1024**3
_RATE_WINDOW = 50  # recent step events the throughput and ETA are measured over


@dataclass(frozen=True)
class Series:
    label: str
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class RunView:
    """Everything the run detail screen draws, as of one moment."""

    run_id: str
    row: dict
    steps: tuple[int, ...] = ()
    loss: tuple[float, ...] = ()
    lr: tuple[float, ...] = ()
    memory_kind: str | None = None  # "cuda" (per-GPU VRAM) or "rss" (process memory)
    memory: tuple[Series, ...] = ()
    eval: tuple[Series, ...] = ()  # one per eval metric
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    samples_per_s: float | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    device: str | None = None
    sample: dict | None = None
    sample_image: object = None  # PIL image, decoded off the UI thread
    log_lines: tuple[str, ...] = ()
    log_total: int = 0
    ended: dict | None = None


@dataclass
class RunHistory:
    run_dir: Path
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    memory_kind: str | None = None
    memory: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    eval: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    last_step: dict | None = None
    started: dict | None = None
    sample: dict | None = None
    ended: dict | None = None
    _recent: deque = field(default_factory=lambda: deque(maxlen=_RATE_WINDOW))

    def add(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "run_started":
            self._start(event)
        elif kind == "step":
            self._step(event)
        elif kind == "eval":
            for name, value in event["metrics"].items():
                self._point(self.eval, name, int(event["step"]), _number(value))
        elif kind == "sample_saved":
            path = Path(event["path"])
            self.sample = {**event, "path": str(path if path.is_absolute() else self.run_dir / path)}
        elif kind in TERMINAL_TYPES:
            self.ended = event

    def _start(self, event: dict) -> None:
        self.started = event
        self.ended = None
        self._recent.clear()
        # A resume restarts from its checkpoint: steps after it were done again, so drop the old ones.
        resume = event.get("resume_step") or 0
        if resume and self.steps and self.steps[-1] > resume:
            keep = sum(1 for s in self.steps if s <= resume)
            del self.steps[keep:], self.loss[keep:], self.lr[keep:]
            for steps, values in [*self.memory.values(), *self.eval.values()]:
                cut = sum(1 for s in steps if s <= resume)
                del steps[cut:], values[cut:]

    def _step(self, event: dict) -> None:
        step = int(event["step"])
        self.last_step = event
        self.steps.append(step)
        self.loss.append(_number(event.get("loss")))
        self.lr.append(_number(event.get("lr")))
        self._recent.append((float(event.get("time", 0.0)), step))
        memory = event.get("memory") or {}
        self.memory_kind = memory.get("kind", self.memory_kind)
        if self.memory_kind == "cuda":
            for device in memory.get("devices", []):
                for key, short in (("allocated", "alloc"), ("reserved", "resv"), ("peak", "peak")):
                    self._memory_point(f"gpu{device['index']} {short}", step, device.get(key))
        elif self.memory_kind == "rss":
            self._memory_point("rss", step, memory.get("rss"))

    def _memory_point(self, label: str, step: int, value) -> None:
        if value is not None:
            self._point(self.memory, label, step, float(value) / GIB)

    @staticmethod
    def _point(series: dict, label: str, step: int, value: float) -> None:
        steps, values = series.setdefault(label, ([], []))
        steps.append(step)
        values.append(value)

    def steps_per_s(self) -> float | None:
        if len(self._recent) < 2:
            return None
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None

    def total_steps(self) -> int | None:
        for source in (self.last_step, self.started):
            if source and source.get("total_steps"):
                return int(source["total_steps"])
        return None

    def view(self, run_id: str, row: dict, log_lines=(), log_total: int = 0, sample_image=None) -> RunView:
        rate = self.steps_per_s()
        total = self.total_steps() or row.get("total_steps")
        step = self.steps[-1] if self.steps else int(row.get("step") or 0)
        running = self.ended is None and row.get("status") == "running"
        eta = (total - step) / rate if rate and total and running else None
        last = self.last_step or {}
        return RunView(
            run_id=run_id,
            row=row,
            steps=tuple(self.steps),
            loss=tuple(self.loss),
            lr=tuple(self.lr),
            memory_kind=self.memory_kind,
            memory=tuple(Series(label, tuple(s), tuple(v)) for label, (s, v) in self.memory.items()),
            eval=tuple(Series(label, tuple(s), tuple(v)) for label, (s, v) in self.eval.items()),
            step=step,
            total_steps=total,
            epoch=last.get("epoch"),
            samples_per_s=last.get("samples_per_s"),
            steps_per_s=rate,
            eta_s=eta,
            device=(self.started or {}).get("device"),
            sample=self.sample,
            sample_image=sample_image,
            log_lines=tuple(log_lines),
            log_total=log_total,
            ended=self.ended,
        )


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
