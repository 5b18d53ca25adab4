"""A run's history folded from its events (engine/events.py): series for the charts, throughput, ETA.

Pure data, no I/O: the watcher feeds it events in a worker thread and hands the UI frozen RunViews. Each
series is decimated (loratui/series.py), so a run of 200,000 steps costs what one of a few thousand does.
A long run's past comes from the library instead of its events (load, then add(..., points=False) for the
events the library holds); the events after it are folded as they come.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from engine.events import TERMINAL_TYPES
from loratui.series import Decimated

GIB = 1024**3
RATE_WINDOW = 50  # recent step events the throughput and ETA are measured over
TEXT_SAMPLES = 24  # text samples kept for the panel: a few steps' completions of every validation prompt
_CUDA_MEMORY = (("allocated", "alloc"), ("reserved", "resv"), ("peak", "peak"))  # event field, chart label


@dataclass(frozen=True)
class Series:
    label: str
    steps: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, label: str, series: Decimated) -> "Series":
        return cls(label, *series.points())


@dataclass(frozen=True)
class RunView:
    """Everything the run detail screen draws, as of one moment."""

    run_id: str
    row: dict
    loss: Series = Series("loss", (), ())
    lr: Series = Series("lr", (), ())
    memory_kind: str | None = None  # "cuda" (per-GPU VRAM) or "rss" (process memory)
    memory: tuple[Series, ...] = ()
    eval: tuple[Series, ...] = ()  # one per eval metric
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    last_loss: float | None = None
    samples_per_s: float | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    device: str | None = None
    sample: dict | None = None
    sample_image: object = None  # PIL image, decoded off the UI thread
    base_sample: dict | None = None  # the step-0 image sample: the base model's, before any training
    base_image: object = None
    texts: tuple[dict, ...] = ()  # sample_saved events with text (causal-lm), newest step first
    log_lines: tuple[str, ...] = ()
    log_total: int = 0
    ended: dict | None = None


def chart_series(key: str) -> tuple[str, str] | None:
    """Where a metric of the library (loratui/runs/ingest.py names them) goes: (group, label), group being
    loss, lr, memory or eval; None for a metric no chart shows."""
    if key in ("loss", "lr"):
        return key, key
    if key == "memory_rss":
        return "memory", "rss"
    if key.startswith("eval/"):
        return "eval", key.removeprefix("eval/")
    device, _, field_name = key.partition("_")
    short = dict(_CUDA_MEMORY).get(field_name)
    if device.startswith("gpu") and short:
        return "memory", f"{device} {short}"
    return None


@dataclass
class RunHistory:
    run_dir: Path
    width: int = 1  # bucket width of the series started here (loratui.series.width_for the run's length)
    loss: Decimated = field(init=False)
    lr: Decimated = field(init=False)
    memory_kind: str | None = None
    memory: dict[str, Decimated] = field(default_factory=dict)
    eval: dict[str, Decimated] = field(default_factory=dict)
    last_step: dict | None = None
    started: dict | None = None
    sample: dict | None = None
    base_sample: dict | None = None
    texts: deque = field(default_factory=lambda: deque(maxlen=TEXT_SAMPLES))
    ended: dict | None = None
    _recent: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    def __post_init__(self) -> None:
        self.loss, self.lr = Decimated(self.width), Decimated(self.width)

    def load(self, series: dict[str, Decimated]) -> None:
        """The run's past from the library, by metric key (memory in bytes, as ingested)."""
        for key, points in series.items():
            group, label = chart_series(key) or (None, None)
            if group in ("loss", "lr"):
                setattr(self, group, points)
            elif group == "eval":
                self.eval[label] = points
            elif group == "memory":
                self.memory[label] = points.scale(1 / GIB)
                self.memory_kind = "rss" if label == "rss" else "cuda"

    def add(self, event: dict, points: bool = True) -> None:
        """Fold one event; points=False for one whose chart points the library already gave (load)."""
        kind = event.get("type")
        if kind == "run_started":
            self._start(event, points)
        elif kind == "step":
            self._step(event, points)
        elif kind == "eval" and points:
            for name, value in event["metrics"].items():
                self._series(self.eval, name).add(int(event["step"]), _number(value))
        elif kind == "sample_saved":
            path = Path(event["path"])
            self.sample = {**event, "path": str(path if path.is_absolute() else self.run_dir / path)}
            if self.sample.get("text") is not None:
                self.texts.append(self.sample)
            elif int(event["step"]) == 0:
                self.base_sample = self.sample
        elif kind in TERMINAL_TYPES:
            self.ended = event

    def _start(self, event: dict, points: bool) -> None:
        self.started = event
        self.ended = self.last_step = None
        self._recent.clear()
        # A resume restarts from its checkpoint: steps after it were done again, so drop the old ones.
        resume = event.get("resume_step") or 0
        if resume and points:
            for series in (self.loss, self.lr, *self.memory.values(), *self.eval.values()):
                series.cut(resume)
        if resume:  # the samples after the checkpoint are made again too
            kept = [sample for sample in self.texts if sample["step"] <= resume]
            self.texts = deque(kept, maxlen=TEXT_SAMPLES)

    def _step(self, event: dict, points: bool) -> None:
        step = int(event["step"])
        self.last_step = event
        self._recent.append((float(event.get("time", 0.0)), step))
        memory = event.get("memory") or {}
        self.memory_kind = memory.get("kind", self.memory_kind)
        if not points:
            return
        self.loss.add(step, _number(event.get("loss")))
        self.lr.add(step, _number(event.get("lr")))
        if self.memory_kind == "cuda":
            for device in memory.get("devices", []):
                for key, short in _CUDA_MEMORY:
                    self._memory_point(f"gpu{device['index']} {short}", step, device.get(key))
        elif self.memory_kind == "rss":
            self._memory_point("rss", step, memory.get("rss"))

    def _memory_point(self, label: str, step: int, value) -> None:
        if value is not None:
            self._series(self.memory, label).add(step, float(value) / GIB)

    def _series(self, group: dict[str, Decimated], label: str) -> Decimated:
        if label not in group:
            group[label] = Decimated(self.width)
        return group[label]

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

    def view(self, run_id: str, row: dict, log_lines=(), log_total: int = 0, sample_image=None,
             base_image=None) -> RunView:
        rate = self.steps_per_s()
        total = self.total_steps() or row.get("total_steps")
        last = self.last_step or {}
        step = int(last["step"]) if last else int(row.get("step") or 0)
        running = self.ended is None and row.get("status") == "running"
        eta = (total - step) / rate if rate and total and running else None
        return RunView(
            run_id=run_id,
            row=row,
            loss=Series.of("loss", self.loss),
            lr=Series.of("lr", self.lr),
            memory_kind=self.memory_kind,
            memory=tuple(Series.of(label, series) for label, series in self.memory.items()),
            eval=tuple(Series.of(label, series) for label, series in self.eval.items()),
            step=step,
            total_steps=total,
            epoch=last.get("epoch"),
            last_loss=self.loss.last[1] if self.loss.last else row.get("last_loss"),
            samples_per_s=last.get("samples_per_s"),
            steps_per_s=rate,
            eta_s=eta,
            device=(self.started or {}).get("device"),
            sample=self.sample,
            sample_image=sample_image,
            base_sample=self.base_sample,
            base_image=base_image,
            texts=tuple(sorted(self.texts, key=lambda sample: -sample["step"])),  # stable: prompts in order
            log_lines=tuple(log_lines),
            log_total=log_total,
            ended=self.ended,
        )


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
