"""Open library.db (WAL, busy timeout, foreign keys) and bring its schema up to date."""

import re
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from engine.errors import LoratuiError
from engine.home import db_path
from loratui.resources import data_dir

BUSY_TIMEOUT_MS = 30_000
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


def migrations() -> list[tuple[int, str, Path]]:
    """Numbered SQL files of schema/, in order."""
    found = []
    for path in data_dir("schema").iterdir():
        match = _MIGRATION.match(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path))
    return sorted(found)


def schema_version(db: sqlite_utils.Database) -> int:
    if "schema_migrations" not in db.table_names():
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(db: sqlite_utils.Database, target: int | None = None) -> int:
    """Apply every migration above the recorded version (up to `target`), each in one transaction.

    The version is read again under the write lock, so processes opening a new library at once apply each
    migration once. This is why sqlite-utils' own Migrations is not used: it lists what is pending before it
    takes any lock and applies each in a deferred BEGIN, so two processes opening a new library together (the
    dashboard and a run, say) would both apply the first migration; and its migrations are Python functions,
    where the design keeps the schema as SQL files in schema/."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
    )
    current = schema_version(db)
    for version, name, path in migrations():
        if version <= current or (target is not None and version > target):
            continue
        conn = db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if schema_version(db) < version:
                for statement in _statements(path.read_text()):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                             [version, name])
            conn.commit()
        except sqlite3.Error as exc:
            conn.rollback()
            raise LoratuiError(
                f"library migration {path.name} failed: {exc}",
                hint="the library was left at the previous version; report this with the file name",
            ) from exc
        current = version
    return current


def _statements(script: str) -> list[str]:
    """A migration's statements, split where SQLite says one is complete (trigger bodies hold semicolons)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(part.strip().startswith("--") for part in pending.splitlines() if part.strip()):
        raise sqlite3.OperationalError(f"incomplete statement at the end: {pending.strip()[:60]}")
    return statements


def connect(path: Path | str) -> sqlite_utils.Database:
    """A connection with the pragmas every reader and writer needs; no migration."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _wal(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return sqlite_utils.Database(conn)


def _wal(conn: sqlite3.Connection, tries: int = 50) -> None:
    """WAL mode. Switching a new file to it takes a lock SQLite does not wait for (no busy handler), so
    processes opening a new library together retry for a moment; once in WAL, the mode is kept in the file."""
    for attempt in range(tries):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05)


def open_db(path: Path | str | None = None) -> sqlite_utils.Database:
    """library.db under LORATUI_HOME (or `path`), migrated to the newest schema."""
    db = connect(path or db_path())
    migrate(db)
    # Entries from before the content store (migration 0006) are moved into it. It is not a migration: it
    # copies files, one entry per transaction so that a crash leaves each entry whole, and so it cannot sit
    # inside a migration's one transaction; this query is what tells whether any is left.
    if db.execute("SELECT 1 FROM adapters WHERE storage IS NULL LIMIT 1").fetchone():
        from loratui.library.adopt import adopt_all

        adopt_all(db)
    return db
