"""The run queue: specs run one after another by a single worker; a failed or crashed job is recorded and
the worker goes on to the next. A stopped job (Ctrl-C, `runs stop`) stops the worker too: someone asked."""

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.errors import LoratuiError
from engine.home import home
from engine.spec import load_spec, parse_toml
from loratui.runs.launch import begin
from loratui.runs.supervise import supervise

NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def add(db, paths: list[str]) -> list[dict]:
    """Validate every spec first (all problems at once), then queue them all, in order."""
    specs, problems = [], []
    for path in paths:
        try:
            specs.append((path, load_spec(path)))
        except LoratuiError as exc:
            problems.append(exc.message)
    if problems:
        raise LoratuiError("\n".join(problems), hint="nothing was queued; fix the specs and add them again")
    jobs = []
    with db.conn:
        for path, spec in specs:
            cursor = db.execute("INSERT INTO queue (spec_path, spec, name) VALUES (?, ?, ?)",
                                [str(Path(path).resolve()), spec.to_toml(given_only=True), spec.name])
            jobs.append({"id": cursor.lastrowid, "name": spec.name, "spec_path": str(Path(path).resolve())})
    return jobs


def jobs(db) -> list[dict]:
    return list(db.query("SELECT * FROM queue ORDER BY id"))


def remove(db, ids: list[int]) -> None:
    rows = {row["id"]: row for row in db.query("SELECT id, status FROM queue")}
    unknown = [i for i in ids if i not in rows]
    running = [i for i in ids if i in rows and rows[i]["status"] == "running"]
    if unknown or running:
        raise LoratuiError(("unknown queue job(s): " + ", ".join(map(str, unknown)) if unknown else
                            "job(s) running: " + ", ".join(map(str, running))),
                           hint="`loratui queue ls` lists the jobs; stop a running one with `loratui runs stop`")
    with db.conn:
        db.conn.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in ids])


def run_worker(db, report: Callable[[str], None] = print) -> int:
    """Run queued jobs until none is left (or one is stopped); returns how many ran."""
    with WorkerLock():
        # Holding the lock, no other worker is alive: a job still marked running lost its worker.
        with db.conn:
            db.execute(f"UPDATE queue SET status = 'crashed', error = 'the queue worker died during this job', "
                       f"ended = {NOW} WHERE status = 'running'")
        count = 0
        while (job := _claim(db)) is not None:
            count += 1
            report(f"job {job['id']} ({job['name']}): starting")
            status, run_id, error = _run_job(db, job)
            with db.conn:
                db.execute(f"UPDATE queue SET status = ?, run_id = ?, error = ?, ended = {NOW} WHERE id = ?",
                           [status, run_id, error, job["id"]])
            report(f"job {job['id']} ({job['name']}): {status}" + (f": {error}" if error else ""))
            if status == "stopped":
                report("the queue stops with its stopped job; `loratui queue run` goes on with the rest")
                break
        return count


def _claim(db) -> dict | None:
    with db.conn:
        row = db.execute("SELECT id FROM queue WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        db.execute(f"UPDATE queue SET status = 'running', started = {NOW} WHERE id = ?", [row[0]])
    return next(db.query("SELECT * FROM queue WHERE id = ?", [row[0]]))


def _run_job(db, job: dict) -> tuple[str, str | None, str | None]:
    try:
        plan = begin(db, spec=parse_toml(job["spec"], job["spec_path"]))
    except LoratuiError as exc:
        return "failed", None, exc.message.replace("\n", " ")
    try:
        row = supervise(db, plan)
    except Exception as exc:  # the next job must still run
        return "crashed", plan.run_id, f"{type(exc).__name__}: {exc}"
    return row["status"], plan.run_id, row["error"]


class WorkerLock:
    """One worker per LORATUI_HOME: an exclusive lock on a file, released when the process ends."""

    def __enter__(self):
        self.handle = open(home() / "queue.lock", "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise LoratuiError("a queue worker is already running", hint="`loratui queue ls` shows its progress") \
                from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def start_detached_worker() -> int:
    logs = home() / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "queue-worker.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "loratui", "queue", "run"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))
    return proc.pid
