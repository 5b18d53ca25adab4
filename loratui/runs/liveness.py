"""A run is alive only if its recorded pid exists *and* started when recorded (engine.liveness)."""

from engine.liveness import is_alive, process_start_time

__all__ = ["is_alive", "mark_crashed", "process_start_time"]


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
