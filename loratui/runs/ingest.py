"""events.jsonl -> library.db: the runs row, a row of metrics per step (loratui/db/metrics.py), samples.

Idempotent: runs.last_seq records the highest event applied, so anyone may call ingest() at any time to
catch up (the supervisor does every half second; `runs ls` does for runs whose supervisor died).
"""

import gc
import json
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from engine.events import EventTail, offset_after
from engine.liveness import is_alive
from engine.rundir import RunDir
from loratui.db import runs as table
from loratui.db.txn import immediate

_TAIL_BYTES = 64 * 1024  # far more than one event line
_INSERT_STEP = ("INSERT OR REPLACE INTO steps (run_id, step, loss, lr, grad_norm, samples_per_s, step_time, memory_rss) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")  # the order _apply's rows have


def ingest(db, run_dir: Path | str, run_id: str | None = None, tail: EventTail | None = None) -> list[dict]:
    """Apply the events not yet in library.db; returns them (empty when up to date).

    A caller polling one run passes the same EventTail each time, so only new bytes are read."""
    run = RunDir(run_dir)
    run_id = run_id or run.run_id
    row = table.find(db, run_id, "last_seq")
    if row is None:
        return []
    last_seq = row["last_seq"]
    with _no_cycle_collection():
        events = [e for e in tail.poll() if e["seq"] > last_seq] if tail else _events_after(run.events, last_seq)
        if events:
            with _parents_known(db), immediate(db):
                _apply(db, run_id, events)
    return events


def _events_after(path: Path, seq: int) -> list[dict]:
    """The events after `seq`, found without reading those before (a long run's file is tens of MB)."""
    return EventTail(path, seq, offset_after(path, seq)).poll()


@contextmanager
def _no_cycle_collection():
    """Events and metric rows make no reference cycles, but while a long run's hundreds of thousands of them
    are made the collector walks them over and over: a tenth of the time of ingesting one. It is switched
    off meanwhile (and on again only by whoever found it on, so overlapping callers leave it on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _parents_known(db):
    """Foreign keys unchecked for a batch: _apply reads the run's row in its write transaction, so every
    metric and sample row it adds has its parent, and checking that per row was a third of the cost of
    inserting a long run's metrics. (The pragma is a no-op inside a transaction, so it goes around one.)"""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        db.conn.execute("PRAGMA foreign_keys = ON")


def _apply(db, run_id: str, events: list[dict]) -> None:
    """Apply events to the runs row, metrics and samples, inside the caller's write transaction; those at or
    below the row's last_seq (applied by someone else meanwhile) are skipped."""
    row = table.find(db, run_id, "last_seq, summary")
    events = [e for e in events if row and e["seq"] > row["last_seq"]]
    if not events:
        return
    update: dict = {}
    summary = json.loads(row["summary"] or "{}")
    steps, gpu_memory, metrics, samples = [], [], [], []
    for event in events:
        kind = event["type"]
        if kind == "step":  # nearly every event: kept lean (a long run has 200,000)
            step = update["step"] = event["step"]
            update["total_steps"] = event["total_steps"]
            if event.get("loss") is not None:
                update["last_loss"] = event["loss"]
            memory = event.get("memory") or {}
            steps.append((run_id, step, event.get("loss"), event.get("lr"), event.get("grad_norm"),
                          event.get("samples_per_s"), event.get("step_time"), memory.get("rss")))
            gpu_memory += [(run_id, device["index"], step, device["allocated"], device["reserved"], device["peak"])
                           for device in memory.get("devices", ())]
        elif kind == "run_started":
            update.update(status="running", started=update.get("started") or _iso(event["time"]), ended=None,
                          error=None, total_steps=event["total_steps"], step=event["resume_step"])
        elif kind == "checkpoint_saved":
            summary["checkpoint"] = event["path"]
        elif kind == "sample_saved":
            samples.append((run_id, event["step"], event.get("prompt"), event["path"], event.get("text")))
        elif kind == "eval":
            metrics += [(run_id, event["step"], f"eval/{key}", value) for key, value in event["metrics"].items()]
            summary["base_metrics" if event["step"] == 0 else "metrics"] = event["metrics"]
        elif kind == "run_finished":
            update.update(status="finished", ended=_iso(event["time"]), step=event["step"])
            summary.update(adapter_path=event["adapter_path"], final_loss=event["final_loss"])
            summary.update({key: event[key] for key in ("metrics", "base_metrics") if event.get(key)})
        elif kind == "run_stopped":
            update.update(status="stopped", ended=_iso(event["time"]), step=event["step"])
            summary.update(adapter_path=event["adapter_path"], checkpoint=event["checkpoint"], reason=event["reason"])
        elif kind == "run_failed":
            update.update(status="failed", ended=_iso(event["time"]), error=event["reason"])
            summary.update(hint=event.get("hint"), traceback_path=event.get("traceback_path"))
    update.update(summary=json.dumps(summary), last_seq=events[-1]["seq"])
    # A step done again after a resume replaces the first try's row whole.
    if steps:
        db.conn.executemany(_INSERT_STEP, steps)
    if gpu_memory:
        db.conn.executemany("INSERT OR REPLACE INTO gpu_memory (run_id, device, step, allocated, reserved, peak) "
                            "VALUES (?, ?, ?, ?, ?, ?)", gpu_memory)
    if metrics:
        db.conn.executemany("INSERT OR REPLACE INTO metrics (run_id, step, key, value) VALUES (?, ?, ?, ?)", metrics)
    if samples:
        db.conn.executemany("INSERT OR IGNORE INTO samples (run_id, step, prompt, path, text) VALUES (?, ?, ?, ?, ?)", samples)
    table.update(db, run_id, update)


def catch_up(db) -> list[str]:
    """Runs whose supervisor is gone: the events they recorded applied and, unless those ended the run, the
    run marked crashed, in one transaction each, so no reader sees a dead run as running, or as crashed
    without its last steps. Returns the ids marked crashed.

    A crashed run is read again if its events grew since: training orphaned by a killed supervisor stops and
    records it later."""
    crashed = []
    for row in table.live(db):
        path = Path(row["dir"]) / "events.jsonl"
        if is_alive(row["pid"], row["pid_start"]) or (row["status"] == "crashed" and _newest_seq(path) <= row["last_seq"]):
            continue
        with _no_cycle_collection():
            events = _events_after(path, row["last_seq"])  # read before taking the write lock
            with _parents_known(db), immediate(db):
                now = table.find(db, row["id"], "status, pid, pid_start")
                if not now or now["status"] not in table.LIVE or is_alive(now["pid"], now["pid_start"]):
                    continue  # resumed, or caught up by someone else, meanwhile
                _apply(db, row["id"], events)
                if table.mark_crashed(db, row["id"]):
                    crashed.append(row["id"])
    return crashed


def _newest_seq(path: Path) -> int:
    """The seq of the last complete event, reading only the end of the file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - _TAIL_BYTES))
            lines = handle.read().split(b"\n")[:-1]  # what follows the last newline is torn or empty
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return json.loads(line)["seq"]
        except (ValueError, KeyError, TypeError):
            continue  # the window's first line, cut short
    return 0


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
