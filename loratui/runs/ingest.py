"""events.jsonl -> library.db: the runs row, metrics in long format, samples.

Idempotent: runs.last_seq records the highest event applied, so anyone may call ingest() at any time to
catch up (the supervisor does every half second; `runs ls` does for runs whose supervisor died).
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from engine.events import EventTail, read_events
from engine.rundir import RunDir
from loratui.runs.liveness import is_alive, mark_crashed

STEP_METRICS = ("loss", "lr", "grad_norm", "samples_per_s", "step_time")


def ingest(db, run_dir: Path | str, run_id: str | None = None, tail: EventTail | None = None) -> list[dict]:
    """Apply the events not yet in library.db; returns them (empty when up to date).

    A caller polling one run passes the same EventTail each time, so only new bytes are read."""
    run = RunDir(run_dir)
    run_id = run_id or run.run_id
    rows = list(db.query("SELECT last_seq, summary FROM runs WHERE id = ?", [run_id]))
    if not rows:
        return []
    last_seq = rows[0]["last_seq"]
    events = [e for e in tail.poll() if e["seq"] > last_seq] if tail else read_events(run.events, after_seq=last_seq)
    if not events:
        return []
    update: dict = {}
    summary = json.loads(rows[0]["summary"] or "{}")
    metrics, samples = [], []
    for event in events:
        kind, when = event["type"], _iso(event["time"])
        if kind == "run_started":
            update.update(status="running", started=update.get("started") or when, ended=None, error=None,
                          total_steps=event["total_steps"], step=event["resume_step"])
        elif kind == "step":
            update.update(step=event["step"], total_steps=event["total_steps"])
            if event.get("loss") is not None:
                update["last_loss"] = event["loss"]
            metrics += [(run_id, event["step"], key, event[key]) for key in STEP_METRICS if event.get(key) is not None]
            metrics += [(run_id, event["step"], key, value) for key, value in _memory(event.get("memory") or {})]
        elif kind == "checkpoint_saved":
            summary["checkpoint"] = event["path"]
        elif kind == "sample_saved":
            samples.append((run_id, event["step"], event.get("prompt"), event["path"]))
        elif kind == "run_finished":
            update.update(status="finished", ended=when, step=event["step"])
            summary.update(adapter_path=event["adapter_path"], final_loss=event["final_loss"])
        elif kind == "run_stopped":
            update.update(status="stopped", ended=when, step=event["step"])
            summary.update(adapter_path=event["adapter_path"], checkpoint=event["checkpoint"], reason=event["reason"])
        elif kind == "run_failed":
            update.update(status="failed", ended=when, error=event["reason"])
            summary.update(hint=event.get("hint"), traceback_path=event.get("traceback_path"))
    update.update(summary=json.dumps(summary), last_seq=events[-1]["seq"])
    with db.conn:
        if metrics:
            db.conn.executemany("INSERT OR REPLACE INTO metrics (run_id, step, key, value) VALUES (?, ?, ?, ?)", metrics)
        if samples:
            db.conn.executemany("INSERT OR IGNORE INTO samples (run_id, step, prompt, path) VALUES (?, ?, ?, ?)",
                                samples)
        columns = ", ".join(f"{key} = ?" for key in update)
        # The seq guard keeps two ingesters racing on one run from applying an event twice.
        db.conn.execute(f"UPDATE runs SET {columns} WHERE id = ? AND last_seq < ?",
                        [*update.values(), run_id, events[-1]["seq"]])
    return events


def catch_up(db) -> list[str]:
    """Runs whose supervisor is gone: apply what their events say, then mark those still running crashed.

    A crashed run is read again if its events changed since: training orphaned by a killed supervisor stops
    and records it later."""
    rows = db.query("SELECT id, dir, pid, pid_start, status, ended FROM runs WHERE status IN ('running', 'crashed')")
    for row in list(rows):
        if row["status"] == "crashed" and not _written_since(Path(row["dir"]) / "events.jsonl", row["ended"]):
            continue
        if not is_alive(row["pid"], row["pid_start"]):
            ingest(db, row["dir"], row["id"])
    return mark_crashed(db)


def _written_since(path: Path, when: str | None) -> bool:
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return when is None or modified >= datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() - 1


def _memory(memory: dict) -> list[tuple[str, float]]:
    if memory.get("kind") == "rss":
        return [("memory_rss", memory["rss"])]
    return [(f"gpu{d['index']}_{key}", d[key]) for d in memory.get("devices", []) for key in ("allocated", "reserved", "peak")]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
