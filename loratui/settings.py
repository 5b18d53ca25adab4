"""Dashboard preferences (theme, loss smoothing) remembered in library.db's `settings` table."""

import sqlite3

from engine.home import db_path


def read_setting(key: str, default: str | None = None) -> str | None:
    """Read before the first frame, so plain sqlite3 (sqlite_utils costs ~0.4 s to import) and no migration:
    a library that does not exist yet, or predates the table, simply has no settings."""
    path = db_path()
    if not path.exists():
        return default
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return default
    return row[0] if row else default


def write_setting(db, key: str, value: str) -> None:
    """`db` is a migrated library (loratui.db.library.open_db)."""
    with db.conn:
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )
