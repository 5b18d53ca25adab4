"""The runs table of library.db, and every statement on it: one order for lists (newest first, the later of two
started in one second first), one "unknown run" error. Callers own their transactions."""

from engine.errors import LoratuiError

ORDER = "created DESC, rowid DESC"
LIVE = ("running", "crashed")  # a run whose events may still grow (a crashed one's orphaned training may finish)
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def unknown(run_id: str, hint: str = "`loratui runs ls` lists the runs") -> LoratuiError:
    return LoratuiError(f"unknown run '{run_id}'", hint=hint)


def find(db, run_id: str, columns: str = "*") -> dict | None:
    rows = list(db.query(f"SELECT {columns} FROM runs WHERE id = ?", [run_id]))
    return rows[0] if rows else None


def get(db, run_id: str, columns: str = "*", hint: str | None = None) -> dict:
    """The run's row, or the unknown-run error."""
    row = find(db, run_id, columns)
    if row is None:
        raise unknown(run_id, *([hint] if hint else []))
    return row


def exists(db, run_id: str) -> bool:
    return db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None


def listed(db, columns: str = "*") -> list[dict]:
    return list(db.query(f"SELECT {columns} FROM runs ORDER BY {ORDER}"))


def latest_named(db, name: str) -> dict | None:
    """The newest run of that spec name."""
    rows = list(db.query(f"SELECT * FROM runs WHERE name = ? ORDER BY {ORDER} LIMIT 1", [name]))
    return rows[0] if rows else None


def live(db) -> list[dict]:
    marks = ", ".join("?" for _ in LIVE)
    return list(db.query(f"SELECT id, dir, pid, pid_start, status, last_seq FROM runs WHERE status IN ({marks})",
                         list(LIVE)))


def insert(db, run_id: str, values: dict) -> None:
    columns = ["id", *values]
    db.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
               [run_id, *values.values()])


def update(db, run_id: str, values: dict) -> bool:
    """Set the columns; False when there is no such row."""
    cursor = db.execute(f"UPDATE runs SET {', '.join(f'{key} = ?' for key in values)} WHERE id = ?",
                        [*values.values(), run_id])
    return cursor.rowcount == 1


def end(db, run_id: str, status: str, error: str | None) -> None:
    """Record how the run ended, now."""
    db.execute(f"UPDATE runs SET status = ?, error = ?, ended = {_NOW} WHERE id = ?", [status, error, run_id])


def mark_crashed(db, run_id: str) -> bool:
    """A running run whose processes are gone is crashed (keeping an error it recorded); False when it was
    not running."""
    cursor = db.execute(f"UPDATE runs SET status = 'crashed', ended = {_NOW}, "
                        "error = coalesce(error, 'the run process died without recording an end') "
                        "WHERE id = ? AND status = 'running'", [run_id])
    return cursor.rowcount == 1
