"""Adapter files the library entries point at, and whether those files are still what was registered.

A stored entry's files live in the content store, LORATUI_HOME/adapters/<sha256>/, written once (whole or
not at all), made read-only and never written again: identical bytes are stored once, and nothing a run or
a user does later can change what an entry holds. A linked entry (`library import --link`) points at the
user's own file instead; its bytes are hashed again on every use.
"""

import os
import shutil
import time
from pathlib import Path

from engine.adapters.inspect import AdapterInfo, content_hash, locate
from engine.atomic import fsync_dir, staged_folder
from engine.errors import LoratuiError
from engine.home import adapters_dir

MODES = ("copy", "link")
TMP_PREFIX = ".tmp-"  # a copy in progress (or one a crash interrupted, which gc collects)
OK, MISSING, CHANGED = "ok", "missing", "changed"
# A store folder this fresh may belong to an import that has not recorded its entry yet: collect() leaves it.
GRACE_S = 60


def place(info: AdapterInfo, mode: str) -> tuple[Path, Path | None]:
    """Where the entry's path will be, and the store folder created for it (None when nothing was created).

    The folder is filled under a hidden temporary name, synced and renamed into place in one step, so a
    failure (a full disk) leaves nothing behind.
    """
    if mode not in MODES:
        raise LoratuiError(f"unknown import mode '{mode}'", f"choose one of: {', '.join(MODES)}")
    if mode == "link":
        return info.path, None
    root = adapters_dir()
    folder = root / info.sha256
    if folder.is_symlink():  # never ours: following it would write where the library does not own
        raise LoratuiError(f"{folder} is a symbolic link", "remove it: the library's store holds real folders only")
    if _holds(folder, info.sha256):  # the same bytes were stored before (an entry removed without its files)
        return _location(folder, info), None
    shutil.rmtree(folder, ignore_errors=True)  # a partial or tampered folder: its name promises other bytes
    try:
        with staged_folder(folder, prefix=TMP_PREFIX) as tmp:
            for file in info.files:
                target = tmp / file.name
                shutil.copyfile(file, target)
                with open(target, "rb") as handle:
                    os.fsync(handle.fileno())
                target.chmod(0o444)
            os.rename(tmp, folder)
        fsync_dir(root)
    except OSError as exc:
        if _holds(folder, info.sha256):  # another process stored the same bytes first
            return _location(folder, info), None
        raise LoratuiError(f"could not copy the adapter into {root}: {exc.strerror or exc}",
                           "check free space and permissions of LORATUI_HOME") from exc
    return _location(folder, info), folder


def _location(folder: Path, info: AdapterInfo) -> Path:
    """The folder for an adapter given as a folder (PEFT, diffusers output_dir), else the file inside it."""
    if info.path.is_dir():
        return folder
    return next(folder.glob("*.safetensors"))


def _holds(folder: Path, sha256: str) -> bool:
    try:
        return folder.is_dir() and content_hash(folder) == sha256
    except LoratuiError:
        return False


def discard(folder: Path | None) -> None:
    """Undo place() after a later step failed."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def stamp(path: Path | str) -> int | None:
    """The newest mtime (ns) of an adapter's files: a cheap sign that they were rewritten."""
    try:
        _, _, files = locate(path)
        return max(f.stat().st_mtime_ns for f in files)
    except (LoratuiError, OSError):
        return None


def status(row: dict, *, deep: bool = False) -> str:
    """ok, missing or changed. Quick by default (existence, size, mtime); `deep` hashes the bytes."""
    path = Path(row["path"])
    if not path.exists():
        return MISSING
    if deep:
        try:
            return OK if content_hash(path) == row["sha256"] else CHANGED
        except LoratuiError:
            return CHANGED
    try:
        _, _, files = locate(path)
        stats = [f.stat() for f in files]  # once: size and mtime both come from these
    except (LoratuiError, OSError):
        return CHANGED
    same_time = row.get("mtime_ns") is None or max(s.st_mtime_ns for s in stats) == row["mtime_ns"]
    return OK if sum(s.st_size for s in stats) == row["size"] and same_time else CHANGED


def require_intact(row: dict) -> dict:
    """The row, if its files still hash to the recorded sha256; else a one-line error naming the entry."""
    found = status(row, deep=True)
    if found != OK:
        what = "is missing" if found == MISSING else "has changed since it was registered"
        raise LoratuiError(f"adapter #{row['id']} '{row['name']}': its file {row['path']} {what}",
                           "`loratui library check` lists such entries; re-import the adapter, or "
                           f"`loratui library rm {row['id']}`")
    return row


def stored_folder(path: Path | str) -> Path | None:
    """The store folder holding `path`, if it is in the store."""
    root = adapters_dir().resolve()
    absolute = Path(os.path.abspath(path))
    if absolute.is_relative_to(root) and absolute != root:
        return root / absolute.relative_to(root).parts[0]
    return None


def delete_files(db, row: dict) -> list[str]:
    """Remove an entry's store folder, unless another entry uses it; a linked file is the user's, never removed."""
    folder = stored_folder(row["path"])
    if folder is None or row.get("storage") == "link":
        return []
    used = db.execute("SELECT 1 FROM adapters WHERE id != ? AND (path = ? OR path LIKE ?)",
                      [row["id"], str(folder), f"{folder}{os.sep}%"]).fetchone()
    if used or not folder.exists():
        return []
    shutil.rmtree(folder)
    return [str(folder)]


def collect(db, *, remove: bool = True) -> list[tuple[Path, int]]:
    """Remove the store folders no entry points at (an entry removed with --keep-files, a copy a crash left
    half-made); returns each such folder with its size in bytes (`remove=False` only lists them). Only what
    place() writes is touched: folders named by a sha256, and its hidden temporary ones."""
    root = adapters_dir().resolve()
    used = {stored_folder(path) for (path,) in db.execute("SELECT path FROM adapters").fetchall()}
    removed = []
    for folder in sorted(root.iterdir()):
        if folder in used or folder.is_symlink() or not folder.is_dir() or not (
                content_named(folder.name) or folder.name.startswith(TMP_PREFIX)):
            continue
        files = [f for f in folder.rglob("*") if f.is_file()]
        if time.time() - max((f.stat().st_mtime for f in [folder, *files]), default=0) < GRACE_S:
            continue
        removed.append((folder, sum(f.stat().st_size for f in files)))
        if remove:
            shutil.rmtree(folder)
    return removed


def content_named(name: str) -> bool:
    """A store folder's name: the sha256 of what it holds."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)
