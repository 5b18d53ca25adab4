"""A recorded pid counts as alive only with a matching start time; dead runs show as crashed."""

import signal
import subprocess
import sys

import pytest

from engine.errors import LoratuiError
from engine.liveness import is_alive, process_start_time
from loratui.db.library import open_db
from loratui.runs.control import stop_run
from loratui.runs.ingest import catch_up


def _add_run(db, run_id, pid, pid_start, status="running"):
    db["runs"].insert({"id": run_id, "name": run_id, "task": "text-to-image", "dir": "/tmp", "spec": "",
                       "status": status, "pid": pid, "pid_start": pid_start})


def test_dead_and_reused_pids_become_crashed():
    db = open_db()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start_time(proc.pid)
    _add_run(db, "live", proc.pid, start)
    _add_run(db, "reused", proc.pid, start - 100)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _add_run(db, "dead", dead.pid, 1.0)
    try:
        assert is_alive(proc.pid, start)
        assert sorted(catch_up(db)) == ["dead", "reused"]
        assert db["runs"].get("live")["status"] == "running"
        assert db["runs"].get("dead")["status"] == "crashed"
    finally:
        proc.kill()
        proc.wait()


def test_stop_signals_the_recorded_process():
    db = open_db()
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\nprint('ready', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    _add_run(db, "r1", proc.pid, process_start_time(proc.pid))
    assert stop_run(db, "r1", signal.SIGTERM) == proc.pid
    assert proc.wait(timeout=10) == 7
    with pytest.raises(LoratuiError, match="unknown run"):
        stop_run(db, "nope")
