"""What the dashboard reads: runs from library.db, each run's events.jsonl and run.log, tailed.

Called from worker threads only (sqlite and file reads never block the UI). The dashboard writes nothing
here but what ingest.catch_up records: a run whose process is gone is crashed, with the steps it recorded.
"""

import json
import threading
from collections import deque
from contextlib import contextmanager
from pathlib import Path

from engine.errors import LoratuiError
from engine.events import EventTail
from loratui.history import RunHistory, RunView
from loratui.runs.ingest import catch_up

RUN_COLUMNS = (
    "id, name, task, dir, base_model, status, pid, pid_start, created, started, ended, step, total_steps, "
    "last_loss, last_seq, error"
)
LOG_LINES = 300
_LOG_WINDOW = 64 * 1024  # how far back the first read of a log, or a peek at the events, looks
_open_lock = threading.Lock()


def open_library():
    """A connection for this worker thread; one migration check at a time (two first opens would race)."""
    from loratui.library.db import open_db  # sqlite_utils is slow to import: keep it off the first frame

    with _open_lock:
        return open_db()


@contextmanager
def library():
    """open_library(), closed at the end of the block."""
    db = open_library()
    try:
        yield db
    finally:
        db.close()


def list_runs(db) -> list[dict]:
    """Every run, newest first, with a fresher step and loss peeked from the events of running ones
    (the supervisor ingests them into the library, but the file is never behind it)."""
    catch_up(db)
    rows = list(db.query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created DESC, id DESC"))
    for row in rows:
        if row["status"] == "running":
            latest = peek_latest_step(Path(row["dir"]) / "events.jsonl")
            if latest and latest["seq"] > (row["last_seq"] or 0):
                row["step"] = latest["step"]
                row["total_steps"] = latest.get("total_steps") or row["total_steps"]
                row["last_loss"] = latest.get("loss", row["last_loss"])
    return rows


def get_run(db, run_id: str) -> dict:
    rows = list(db.query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise LoratuiError(f"unknown run '{run_id}'", hint="it may have been deleted; press 1 for the runs list")
    return rows[0]


def peek_latest_step(path: Path) -> dict | None:
    """The last complete step event, reading only the end of the file."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _LOG_WINDOW))
            chunk = handle.read()
    except FileNotFoundError:
        return None
    for line in reversed(chunk.split(b"\n")):
        if b'"step"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "step":
            return event
    return None


class LogTail:
    """The last lines of a growing text file (the first read skips all but its end), plus lines added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.total = 0
        self._offset: int | None = None
        self._partial = b""

    def poll(self) -> bool:
        try:
            with open(self.path, "rb") as handle:
                size = handle.seek(0, 2)
                if self._offset is None or size < self._offset:
                    self._offset = max(0, size - _LOG_WINDOW)
                    self._partial = b""
                    skip_first = self._offset > 0
                else:
                    skip_first = False
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return False
        if not chunk:
            return False
        self._offset += len(chunk)
        parts = (self._partial + chunk).split(b"\n")
        self._partial = parts.pop()
        if skip_first and parts:
            parts.pop(0)
        for raw in parts:
            self.add(raw.decode("utf-8", "replace").rstrip("\r"))
        return bool(parts)

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.total += 1


class RunWatcher:
    """One run: its whole history so far on the first poll, then only what is new."""

    def __init__(self, db, run_id: str) -> None:
        self.db = db
        self.run_id = run_id
        self.row = get_run(db, run_id)
        run_dir = Path(self.row["dir"])
        self.history = RunHistory(run_dir)
        self.events = EventTail(run_dir / "events.jsonl")
        self.log = LogTail(run_dir / "run.log")
        self.sample_image = None
        self._sample_path: str | None = None

    def poll(self, check_alive: bool = False) -> bool:
        """Read what is new; True when anything changed."""
        if check_alive:
            catch_up(self.db)
        events = self.events.poll()
        for event in events:
            self.history.add(event)
            line = log_line(event)
            if line:
                self.log.add(line)
        logged = self.log.poll()
        sample = self.history.sample
        if sample and sample["path"] != self._sample_path:
            self._sample_path = sample["path"]
            self.sample_image = load_image(sample["path"])
        row = get_run(self.db, self.run_id)
        changed = bool(events) or logged or row != self.row
        self.row = row
        return changed

    def view(self) -> RunView:
        return self.history.view(self.run_id, self.row, self.log.lines, self.log.total, self.sample_image)


def log_line(event: dict) -> str | None:
    """The run's own log messages and its end, for the log panel beside the process output (run.log)."""
    kind = event.get("type")
    if kind == "log":
        return f"{event.get('level', 'info')}: {event.get('message', '')}"
    if kind == "run_failed":
        return f"run failed at step {event.get('step')}: {event.get('reason')}" + (
            f" (hint: {event['hint']})" if event.get("hint") else "")
    if kind == "run_stopped":
        return f"run stopped at step {event.get('step')}: {event.get('reason') or 'asked to stop'}"
    if kind == "run_finished":
        adapter = event.get("adapter_path")
        return f"run finished at step {event.get('step')}" + (f": adapter in {adapter}" if adapter else "")
    return None


def load_image(path: str):
    """The decoded image, or None when it is missing or unreadable (the panel says so)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError):
        return None


def adapter_for_run(db, run_id: str) -> int | None:
    rows = list(db.query("SELECT id FROM adapters WHERE source_run = ? ORDER BY id DESC LIMIT 1", [run_id]))
    return rows[0]["id"] if rows else None


def list_adapters(db) -> list[dict]:
    return list(db.query(
        "SELECT id, name, format, family, base_model, rank, alpha, size, created, source_run FROM adapters "
        "ORDER BY created DESC, id DESC"
    ))


def run_spec(db, run_id: str) -> str:
    rows = list(db.query("SELECT spec FROM runs WHERE id = ?", [run_id]))
    if not rows or not rows[0]["spec"]:
        raise LoratuiError(f"run '{run_id}' has no recorded spec", hint="open its spec.toml and launch a copy")
    return rows[0]["spec"]
