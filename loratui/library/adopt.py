"""Upgrade in place: entries registered before the content store (storage IS NULL) are moved into it.

Each entry is adopted in its own write transaction, so two processes opening the library at once adopt
it once, and a crash half-way leaves every entry either as it was or adopted:
- files whose bytes still hash to the recorded sha256 are copied into the store (a copy the library made
  earlier under adapters/<name>/ is removed once the entry points at the store; the user's and the run's
  own files are left where they were);
- an old `--link` entry (symlinks under adapters/<name>/) points at the link's target and stays linked;
- files that are missing or hold other bytes (a resumed run wrote over them) are kept linked where they
  are, so `library ls` shows them as missing or changed instead of silently using the wrong weights.
"""

import shutil
from pathlib import Path

from engine.adapters.inspect import content_hash, inspect_file
from engine.errors import LoratuiError
from loratui.library import store


def adopt_all(db) -> int:
    """Adopt every entry from before the store; returns how many this call adopted."""
    ids = [r[0] for r in db.execute("SELECT id FROM adapters WHERE storage IS NULL ORDER BY id").fetchall()]
    return sum(_adopt(db, adapter_id) for adapter_id in ids)


def _adopt(db, adapter_id: int) -> bool:
    legacy = None
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute("SELECT id, path, sha256 FROM adapters WHERE id = ? AND storage IS NULL",
                         [adapter_id]).fetchone()
        if row is None:  # another process adopted it meanwhile
            db.conn.rollback()
            return False
        path, sha256 = Path(row[1]), row[2]
        legacy = _legacy_folder(path)
        target = _link_target(path) if legacy else None
        if target is None and _intact(path, sha256):
            location, _ = store.place(inspect_file(path, allow_nonfinite=True), "copy")
            values = (str(location), "store", store.stamp(location))
        else:
            location = target or path
            values = (str(location), "link", store.stamp(location))
            if target is None:
                legacy = None  # keep whatever is there: it is all that is left of the entry
        db.conn.execute("UPDATE adapters SET path = ?, storage = ?, mtime_ns = ? WHERE id = ?", [*values, adapter_id])
        db.conn.commit()
    except BaseException:
        db.conn.rollback()
        raise
    if legacy is not None:
        shutil.rmtree(legacy, ignore_errors=True)  # symlinks and the library's own old copy; never a link target
    return True


def _intact(path: Path, sha256: str) -> bool:
    try:
        return path.exists() and content_hash(path) == sha256
    except LoratuiError:
        return False


def _legacy_folder(path: Path) -> Path | None:
    """adapters/<name>/, the per-name folder the library used to copy or link files into."""
    folder = store.stored_folder(path)
    if folder is None or store.content_named(folder.name):
        return None
    return folder


def _link_target(path: Path) -> Path | None:
    """For an old `--link` entry (symlinks in its library folder): the file or folder the links point at."""
    if path.is_symlink():
        return path.resolve()
    if path.is_dir():
        links = [entry for entry in path.iterdir() if entry.is_symlink()]
        if links:
            return links[0].resolve().parent
    return None

