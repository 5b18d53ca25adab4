"""Supervising a run: forward stop requests, ingest events into library.db, record how it ended, register
the adapter. `python -m loratui.runs.supervise RUN_ID` is the detached form (`loratui run --detach`)."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import psutil

from engine.errors import LoratuiError
from engine.events import EventTail
from engine.liveness import has_ended
from engine.rundir import RunDir
from engine.spec import load_spec
from loratui.db import runs as table
from loratui.runs.exits import killing_signal, log_size, signal_words
from loratui.runs.ingest import ingest
from loratui.runs.launch import Plan, record_supervisor, start_training

POLL_S = 0.5
AFTER_END_S = 60  # how long the processes may take to exit once the main one has recorded the end
END_EVENTS = ("run_finished", "run_stopped", "run_failed")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARTIAL_TAG = "partial"  # a stopped run's adapter: trained part of the way


class RunFailed(LoratuiError):
    exit_code = 1


class StopForwarder:
    """First SIGINT/SIGTERM/SIGHUP: each training process gets one SIGTERM, finishes its step, saves, exits.
    A second: they are killed at once. A worker that has not announced itself yet (no pid file) is signalled
    as soon as it does, never before its handlers are installed."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.proc: subprocess.Popen | None = None
        self.requests = 0
        self.signalled: set[int] = set()
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}

    def _on_signal(self, signum, frame) -> None:
        self.requests += 1

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def deliver(self) -> None:
        if not self.requests or self.proc is None:
            return
        try:
            family = {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return
        workers = [pid for pid in self.run.worker_pids() if pid in family]
        if self.requests > 1:
            # Insisting: end at once. Checkpoints are atomic, so no half-written one can be taken for whole.
            self.kill_all(workers)
            return
        for pid in workers:
            if pid not in self.signalled:
                self.signalled.add(pid)
                _kill(pid, signal.SIGTERM)


    def kill_all(self, workers: list[int] | None = None) -> None:
        if workers is None:
            workers = self.run.worker_pids()
        for pid in [*workers, self.proc.pid]:
            _kill(pid, signal.SIGKILL)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class RankWatch:
    """Notices the training processes that die while others still run: when the run then ends without saying
    how, they are the ones named."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.alive: dict[int, psutil.Process] = {}
        self.first_dead: str | None = None  # "rank 0 (pid 123)", or several that were found dead together

    def poll(self) -> None:
        for rank, pid in self.run.worker_ranks().items():
            if rank not in self.alive:
                try:
                    self.alive[rank] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    continue
        dead = {rank: process.pid for rank, process in self.alive.items() if has_ended(process.pid)}
        for rank in dead:
            del self.alive[rank]
        if dead and self.first_dead is None and self.alive:  # others still running: not a normal end
            self.first_dead = ", ".join(f"rank {rank} (pid {pid})" for rank, pid in sorted(dead.items()))


def supervise(db, plan: Plan, display=None) -> dict:
    """Run the training to its end; returns the final runs row. Call with the runs row already prepared."""
    record_supervisor(db, plan.run_id, os.getpid())
    forwarder = StopForwarder(plan.run)
    ranks = RankWatch(plan.run)
    last_seq = table.get(db, plan.run_id, "last_seq")["last_seq"]
    tail = EventTail(plan.run.events, after_seq=last_seq)
    code = ended = None
    stuck = False
    log_start = log_size(plan.run.log)
    try:
        proc = forwarder.proc = start_training(plan)
        while code is None:
            try:
                code = proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
            forwarder.deliver()
            ranks.poll()
            events = ingest(db, plan.run.path, plan.run_id, tail)
            if display is not None and events:
                display.update(events)
            if ended is None and any(e["type"] in END_EVENTS for e in events):
                ended = time.monotonic()
            if ended is not None and code is None and time.monotonic() - ended > AFTER_END_S:
                forwarder.kill_all()  # the end is recorded and saved: a process still there is stuck
                stuck = True
    finally:
        forwarder.restore()
    plan.run.clear_pids()
    code = 0 if stuck else code
    row = _finish(db, plan, code, forwarder.requests, ranks.first_dead, killing_signal(code, plan.run.log, log_start))
    if display is not None:
        display.close(row)
    return row


def _finish(db, plan: Plan, code: int, stop_requests: int, first_dead: str | None = None,
            killed_by: int | None = None) -> dict:
    """Record how the run ended where the training did not (`killed_by`: the signal that killed a training
    process, if one did), and register its adapter."""
    row = table.get(db, plan.run_id)
    status = None
    killed = f"killed by {signal_words(killed_by)}" if killed_by else None
    if code and first_dead and row["status"] == "running" and not stop_requests:
        # The main process died without a word, and the others were stopped because of it.
        died = f"training process {first_dead} died at step {row['step']}"
        status, error = "failed", (f"{died}, {killed}; the others were stopped" if killed else
                                   f"{died}; the others were stopped (accelerate exited with code {code})")
    elif row["status"] == "running" and stop_requests > 1:
        status, error = "stopped", "stopped at once by a second stop request, without saving"
    elif row["status"] == "running":  # the training ended without saying how: killed, or forced
        what = f"a training process was {killed}" if killed else f"the training processes exited with code {code}"
        status, error = "crashed", f"{what} without recording an end"
    elif code and not stop_requests and row["status"] != "failed":
        # The main process ended cleanly but another one did not (accelerate then stops the rest).
        status, error = "failed", (f"a training process was {killed}" if killed else
                                   f"a training process failed (accelerate exited with code {code})")
    elif killed and row["status"] == "failed" and killed not in (row["error"] or ""):
        # The main process recorded that another one died; only the launcher's report says of what.
        status, error = "failed", f"{row['error']}, {killed}"
    if status:
        with db.conn:
            table.end(db, plan.run_id, status, error)
    summary = json.loads(row["summary"] or "{}")
    adapter = summary.get("adapter_path")
    if (status or row["status"]) in ("finished", "stopped") and adapter and os.path.exists(adapter):
        summary["adapter_id"], summary["adapter_note"] = _register(db, plan, adapter)
        with db.conn:
            table.update(db, plan.run_id, {"summary": json.dumps(summary)})
    return table.get(db, plan.run_id)


def _register(db, plan: Plan, adapter: str) -> tuple[int | None, str]:
    """Register the run's adapter under the run's id. A stopped run's is partial: tagged so, named and noted
    with the step it reached (the finished adapter, later, takes the plain name); a resumed run's newer one
    is named with its step."""
    try:
        from loratui.library.adapters import edit, free_name, register
    except ImportError:
        return None, "the adapter library is not available in this version"
    run = table.get(db, plan.run_id, "status, step, total_steps")
    partial = run["status"] == "stopped"
    name = plan.run_id
    if partial:
        name = free_name(db, f"{plan.run_id}-step{run['step']}")
    elif db.execute("SELECT 1 FROM adapters WHERE name = ?", [name]).fetchone():
        name = f"{plan.run_id}-step{run['step']}"
    try:
        # Copied into the content store: the run folder's own file is written again by a resume.
        row = register(db, adapter, name=name, source_run=plan.run_id, base_model=plan.spec.model.pretrained,
                       tags=[PARTIAL_TAG] if partial else None)
        if partial and PARTIAL_TAG in row["tags"] and not row.get("notes"):
            row = edit(db, row["id"], notes=f"partial: saved when the run stopped at step {run['step']} of "
                                            f"{run['total_steps']}")
    except LoratuiError as exc:
        return None, f"not registered: {exc.message}"
    return row.get("id"), f"registered as {row.get('name')}" + (f" (partial, step {run['step']})" if partial else "")


def outcome(row: dict) -> int:
    """Exit code for a final runs row; raises RunFailed with the reason for a failed or crashed run."""
    if row["status"] in ("finished", "stopped"):
        return 0
    summary = json.loads(row["summary"] or "{}")
    log = os.path.join(row["dir"], "run.log")
    if row["status"] == "failed":
        raise RunFailed(f"run {row['id']} failed at step {row['step']}: {row['error']}",
                        hint=summary.get("hint") or f"see {log}")
    raise RunFailed(f"run {row['id']} {row['status']} at step {row['step']}: {row['error']}",
                    hint=f"see {log}; `loratui run --resume {row['id']}` continues from the last checkpoint")


def main(argv: list[str] | None = None) -> int:
    """The detached supervisor: the run folder and runs row exist; start the training and watch it."""
    from loratui.db.library import open_db

    parser = argparse.ArgumentParser(prog="python -m loratui.runs.supervise")
    parser.add_argument("run_id")
    parser.add_argument("--resume", default=None)
    args = parser.parse_args(argv)
    db = open_db()
    row = table.get(db, args.run_id, "dir")
    run = RunDir(row["dir"])
    final = supervise(db, Plan(load_spec(run.spec), run, args.resume, args.run_id))
    print(f"{final['id']}: {final['status']} at step {final['step']}", flush=True)
    return 0 if final["status"] in ("finished", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
