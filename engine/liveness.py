"""A process is alive only if its pid exists *and* started when recorded: pids get reused.

Shared by the supervisor's crash detection (loratui.runs.ingest.catch_up) and the training process, which stops
cleanly when the `loratui run` process supervising it has died."""

import psutil

# psutil derives create_time from boot time + start ticks; two readings of one process agree to well
# under this, while a reused pid starts seconds or more later.
_START_TOLERANCE_S = 0.05


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(pid: int | None, pid_start: float | None) -> bool:
    if not pid or pid_start is None:
        return False
    started = process_start_time(pid)
    if started is None or abs(started - pid_start) > _START_TOLERANCE_S:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def has_ended(pid: int) -> bool:
    """The process is gone, or a zombie its parent has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
