"""The run's event stream: JSON lines in events.jsonl, one writer (the main training process).

No torch here: the dashboard and the supervisor read events without paying for it.

Every event carries `v` (schema version), `seq` (1, 2, ... over the run's whole life, resumes included),
`time` (unix seconds) and `type`. Types and their fields:
- run_started: run_id, name, task, total_steps, num_processes, device, mixed_precision, resume_step
- step: step, total_steps, epoch, loss, lr, grad_norm, samples_per_s, step_time,
  memory: {"kind": "cuda", "devices": [{"index", "allocated", "reserved", "peak"}]} | {"kind": "rss", "rss"}
- checkpoint_saved: step, path
- sample_saved: step, path, prompt
- eval: step, epoch, metrics {name: value}, best (the adapter was kept as the best so far)
- log: level, message
- run_finished: step, adapter_path, final_loss, metrics (the last eval's, or null), base_metrics (at step 0)
- run_stopped: step, reason, adapter_path, checkpoint
- run_failed: step, reason, hint, traceback_path
"""

import json
import os
import time
from pathlib import Path

SCHEMA_VERSION = 1
TERMINAL_TYPES = ("run_finished", "run_stopped", "run_failed")
EVENT_TYPES = ("run_started", "step", "checkpoint_saved", "sample_saved", "eval", "log", *TERMINAL_TYPES)


class EventWriter:
    """Appends events and flushes each, so a reader (or a crash) never sees less than was emitted."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        existing = read_events(self.path)
        self.seq = existing[-1]["seq"] if existing else 0
        self._file = open(self.path, "a", encoding="utf-8")
        if self._file.tell() and not self.path.read_bytes().endswith(b"\n"):
            # A crash mid-write left a torn line: end it so the next event starts clean.
            self._file.write("\n")

    def emit(self, type: str, **fields) -> dict:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        self.seq += 1
        event = {"v": SCHEMA_VERSION, "seq": self.seq, "time": time.time(), "type": type, **fields}
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        return event

    def sync(self) -> None:
        """fsync, for the events that must survive a power cut (checkpoints, the end)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class EventTail:
    """Incremental reader: remembers its byte offset and returns only complete new lines."""

    def __init__(self, path: Path | str, after_seq: int = 0) -> None:
        self.path = Path(path)
        self.after_seq = after_seq
        self._offset = 0

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        events = []
        for line in chunk[: end + 1].splitlines():
            event = _parse(line)
            if event is not None and event["seq"] > self.after_seq:
                events.append(event)
                self.after_seq = event["seq"]
        return events


def read_events(path: Path | str, after_seq: int = 0) -> list[dict]:
    """All complete events with seq > after_seq; a torn last line (a crash mid-write) is ignored."""
    return EventTail(path, after_seq).poll()


def _parse(line: bytes) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "seq" in event else None
