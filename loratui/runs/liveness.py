"""A run is alive only if its recorded pid exists *and* started when recorded: pids get reused."""

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


def mark_crashed(db) -> list[str]:
    """Runs recorded as running whose process is gone become 'crashed'; returns their ids."""
    crashed = []
    for row in db.query("SELECT id, pid, pid_start FROM runs WHERE status = 'running'"):
        if not is_alive(row["pid"], row["pid_start"]):
            crashed.append(row["id"])
    if crashed:
        with db.conn:
            for run_id in crashed:
                db.execute(
                    "UPDATE runs SET status = 'crashed', ended = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), "
                    "error = coalesce(error, 'the run process died without recording an end') "
                    "WHERE id = ? AND status = 'running'",
                    [run_id],
                )
    return crashed
