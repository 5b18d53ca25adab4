"""The run's event stream: JSON lines in events.jsonl, one writer (the main training process).

No torch here: the dashboard and the supervisor read events without paying for it.

Every event carries `v` (schema version), `seq` (1, 2, ... over the run's whole life, resumes included),
`time` (unix seconds) and `type`. Types and their fields:
- run_started: run_id, name, task, total_steps, num_processes, device, mixed_precision, resume_step
- step: step, total_steps, epoch, loss, lr, grad_norm, samples_per_s, step_time,
  memory: {"kind": "cuda", "devices": [{"index", "allocated", "reserved", "peak"}]} | {"kind": "rss", "rss"}
- checkpoint_saved: step, path
- sample_saved: step, path, prompt, text (the sample itself, for a task whose samples are text)
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

import orjson

SCHEMA_VERSION = 1
TERMINAL_TYPES = ("run_finished", "run_stopped", "run_failed")
EVENT_TYPES = ("run_started", "step", "checkpoint_saved", "sample_saved", "eval", "log", *TERMINAL_TYPES)
_SCAN_BYTES = 64 * 1024  # offset_after reads a window this small line by line


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

    def __init__(self, path: Path | str, after_seq: int = 0, offset: int = 0) -> None:
        self.path = Path(path)
        self.after_seq = after_seq
        self._offset = offset  # where a line begins: 0, or offset_after(path, after_seq)

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
            event = parse_event(line)
            if event is not None and event["seq"] > self.after_seq:
                events.append(event)
                self.after_seq = event["seq"]
        return events


def read_events(path: Path | str, after_seq: int = 0) -> list[dict]:
    """All complete events with seq > after_seq; a torn last line (a crash mid-write) is ignored."""
    return EventTail(path, after_seq).poll()


def offset_after(path: Path | str, seq: int) -> int:
    """Where the events after `seq` begin: the offset of the first line with a higher seq, or the file's end.
    seq grows line by line, so the file is bisected, and a reader that knows the first `seq` events (the
    library does) starts there without reading them."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return 0
    with handle:
        low, high = 0, handle.seek(0, 2)  # both at the start of a line (or the end)
        while high - low > _SCAN_BYTES:
            handle.seek((low + high) // 2)
            handle.readline()  # the rest of the line the middle fell in
            found = _next_event(handle, high)
            if found is None:
                break
            start, end, event = found
            low, high = (low, start) if event["seq"] > seq else (end, high)
        handle.seek(low)
        for line in handle.read(high - low).splitlines(keepends=True):
            event = parse_event(line)
            if event is not None and event["seq"] > seq:
                return low
            low += len(line)
        return high


def _next_event(handle, limit: int) -> tuple[int, int, dict] | None:
    """(start, end, event) of the next line that holds an event, starting before `limit`."""
    while (start := handle.tell()) < limit:
        line = handle.readline()
        if not line:
            return None
        event = parse_event(line)
        if event is not None:
            return start, start + len(line), event
    return None


def parse_event(line: bytes) -> dict | None:
    """The event on one line, or None for a torn or foreign one. orjson reads a long run's lines in a third of
    json's time; json reads what it refuses that json.dumps writes: NaN and Infinity (a diverged loss)."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            event = json.loads(line)
        except ValueError:
            return None
    return event if isinstance(event, dict) and "seq" in event else None
