"""Stopping a run: a signal to its supervisor, which forwards it to the training processes."""

import os
import signal

from engine.errors import LoratuiError
from engine.liveness import is_alive
from loratui.db import runs as table


def stop_run(db, run_id: str, sig: int = signal.SIGTERM) -> int:
    """Ask a running run to stop cleanly (save a checkpoint and the adapter); returns the pid signalled."""
    row = table.get(db, run_id, "id, status, pid, pid_start")
    if row["status"] != "running" or not is_alive(row["pid"], row["pid_start"]):
        status = "crashed" if row["status"] == "running" else row["status"]  # its process is gone
        hint = (f"it finished; `loratui runs show {run_id}` shows its adapter" if status == "finished" else
                f"only a running run can be stopped; `loratui run --resume {run_id}` continues this one")
        raise LoratuiError(f"run '{run_id}' is not running (status: {status})", hint=hint)
    os.kill(row["pid"], sig)
    return row["pid"]
