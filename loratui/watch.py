"""What the dashboard reads: runs from library.db, each run's events.jsonl and run.log, tailed.

Called from worker threads only (sqlite and file reads never block the UI). The dashboard writes nothing
here but what ingest.catch_up records: a run whose process is gone is crashed, with the steps it recorded.
"""

import json
import re
import sys
import threading
from collections import deque
from contextlib import contextmanager
from pathlib import Path

from engine.errors import LoratuiError
from engine.events import EventTail, offset_after, parse_event
from loratui.db import runs as table
from loratui.db.metrics import run_keys
from loratui.history import RATE_WINDOW, RunHistory, RunView, chart_series
from loratui.runs.ingest import catch_up
from loratui.series import library_series, width_for

RUN_COLUMNS = (
    "id, name, task, dir, base_model, status, pid, pid_start, created, started, ended, step, total_steps, "
    "last_loss, last_seq, error"
)
LOG_LINES = 300
_LOG_WINDOW = 64 * 1024  # how far back the first read of a log, or a peek at the events, looks
_SKIM_CHUNK = 4 * 1024 * 1024
# The type of an event other than a step: "type":"..." as EventWriter writes it, "type": "..." as json.dumps does.
_OTHER_THAN_STEP = re.compile(rb'"type": ?"(?!step")')
ENDED = ("finished", "stopped", "failed")  # a crashed run's training may still be writing
ENDED_CHECK_S = 2.0
_open_lock = threading.Lock()


def open_library():
    """A connection for this worker thread; one migration check at a time (two first opens would race)."""
    with _open_lock:
        _import_sqlite_utils()
        from loratui.db.library import open_db  # sqlite_utils is slow to import: keep it off the first frame

        return open_db()


def _import_sqlite_utils() -> None:
    """sqlite_utils imports pandas, when installed, only to give its Timestamp a column type; the dashboard
    never writes one, and pandas would cost it ~90 MB and a second of CPU. It is hidden for that import
    only, so whatever needs pandas later still gets it."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # an import of it raises ImportError, which sqlite_utils expects
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


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
    rows = table.listed(db, RUN_COLUMNS)
    for row in rows:
        if row["status"] == "running":
            latest = peek_latest_step(Path(row["dir"]) / "events.jsonl")
            if latest and latest["seq"] > (row["last_seq"] or 0):
                row["step"] = latest["step"]
                row["total_steps"] = latest.get("total_steps") or row["total_steps"]
                row["last_loss"] = latest.get("loss", row["last_loss"])
    return rows


def get_run(db, run_id: str) -> dict:
    return table.get(db, run_id, RUN_COLUMNS, hint="it may have been deleted; press 1 for the runs list")


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
    """One run: on the first poll its past, the chart series from the library and its other events skimmed
    from the file; then only what is new in the file. Once the run has ended, nothing is read again."""

    def __init__(self, db, run_id: str) -> None:
        self.db = db
        self.run_id = run_id
        self.row = get_run(db, run_id)
        self.run_dir = Path(self.row["dir"])
        self.history = RunHistory(self.run_dir)
        self.events: EventTail | None = None  # from where the library's events end, once recalled
        self.log = LogTail(self.run_dir / "run.log")
        self.sample_image = self.base_image = None
        self._sample_path: str | None = None
        self._base_path: str | None = None
        self._sizes_seen = (-1, -1)  # of events.jsonl and run.log at the last poll

    def poll(self, check_alive: bool = False) -> bool:
        """Read what is new; True when anything changed."""
        if check_alive:
            catch_up(self.db)
        recalled = self.events is None
        if recalled:
            self._recall()
        row = get_run(self.db, self.run_id)  # before the events: whatever it records, they hold already
        self._sizes_seen = self._sizes()
        events = self.events.poll()
        for event in events:
            self.history.add(event)
            self._log_event(event)
        logged = self.log.poll()
        sample = self.history.sample
        if sample and sample.get("text") is None:  # text: no image
            self._sample_path, self.sample_image = _reloaded(sample, self._sample_path, self.sample_image)
        if self.history.base_sample:
            self._base_path, self.base_image = _reloaded(self.history.base_sample, self._base_path, self.base_image)
        changed = recalled or bool(events) or logged or row != self.row
        self.row = row
        return changed

    @property
    def ended(self) -> bool:
        """Finished, stopped or failed: what the run shows changes no more, unless it is resumed."""
        return self.row["status"] in ENDED

    def wait(self, cancelled: threading.Event, poll_s: float) -> None:
        """Until the next poll is due: poll_s while the run goes on. Once it has ended, until its events file
        grows (a resume writes there first) or its log does (the last lines of a process shutting down):
        only their sizes are looked at, every ENDED_CHECK_S."""
        cancelled.wait(poll_s)
        while self.ended and not cancelled.is_set() and self._sizes() == self._sizes_seen:
            cancelled.wait(ENDED_CHECK_S)

    def view(self) -> RunView:
        return self.history.view(self.run_id, self.row, self.log.lines, self.log.total, self.sample_image,
                                 self.base_image)

    def _recall(self) -> None:
        """The past: the series the library holds (as of one moment, with the last event it applied), then
        the events before that one skimmed from the file; the tail starts after it."""
        with _snapshot(self.db):
            row = get_run(self.db, self.run_id)
            up_to, applied = int(row["step"] or 0), row["last_seq"] or 0
            width = width_for(max(up_to, row["total_steps"] or 0))
            series = {key: library_series(self.db, self.run_id, key, width, up_to)
                      for key in run_keys(self.db, self.run_id) if chart_series(key)}
        self.history = RunHistory(self.run_dir, width)
        self.history.load(series)
        path = self.run_dir / "events.jsonl"
        offset = offset_after(path, applied)
        for event in skim_events(path, offset):
            self.history.add(event, points=False)
            self._log_event(event)
        self.events = EventTail(path, applied, offset)

    def _sizes(self) -> tuple[int, int]:
        return _size(self.events.path), _size(self.log.path)

    def _log_event(self, event: dict) -> None:
        line = log_line(event)
        if line:
            self.log.add(line)


def skim_events(path: Path, end: int):
    """The events before byte `end` but steps, parsed, then the last steps since the last start (throughput
    is measured over them). The library holds the steps' numbers, so their lines are not parsed: a regular
    expression finds the other events' lines, a chunk of the file at a time, at the speed of bytes."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        offset, partial, steps_from = 0, b"", 0
        while offset < end and (chunk := handle.read(min(_SKIM_CHUNK, end - offset))):
            lines = partial + chunk
            whole = lines.rfind(b"\n") + 1
            base = offset - len(partial)  # where `lines` begins in the file
            lines, partial = lines[:whole], lines[whole:]
            offset += len(chunk)
            taken = -1
            for match in _OTHER_THAN_STEP.finditer(lines):
                start = lines.rfind(b"\n", 0, match.start()) + 1
                if start == taken:
                    continue  # a second "type" key on the same line
                taken, stop = start, lines.find(b"\n", match.end()) + 1
                event = parse_event(lines[start:stop])
                if event is not None:
                    if event.get("type") == "run_started":
                        steps_from = base + stop
                    yield event
        yield from _last_steps(handle, steps_from, end)


def _last_steps(handle, start: int, end: int) -> list[dict]:
    """The step events between two line starts, the last RATE_WINDOW of them, read from the end."""
    at = max(start, end - _LOG_WINDOW)
    handle.seek(at)
    lines = handle.read(end - at).split(b"\n")
    events = [parse_event(line) for line in lines[1 if at > start else 0:]]
    return [event for event in events if event is not None and event.get("type") == "step"][-RATE_WINDOW:]


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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@contextmanager
def _snapshot(db):
    """Reads that see the library as of one moment (a read transaction; WAL lets writers go on)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def _reloaded(sample: dict, path: str | None, image):
    """(path, image) of `sample`: decoded again only when its file is another than `path`'s."""
    return (path, image) if sample["path"] == path else (sample["path"], load_image(sample["path"]))


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


def run_spec(db, run_id: str) -> str:
    row = table.find(db, run_id, "spec")
    if not row or not row["spec"]:
        raise LoratuiError(f"run '{run_id}' has no recorded spec", hint="open its spec.toml and launch a copy")
    return row["spec"]
