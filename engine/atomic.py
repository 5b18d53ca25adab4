"""Writes a reader never sees half done: a file or a folder is filled beside its place, then renamed into it.

A crash leaves the old version or the new one, plus at worst a hidden `.NAME.*` sibling that nothing reads.
"""

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, fsync, rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_folder(dest: Path, prefix: str = "") -> Iterator[Path]:
    """A new hidden sibling of `dest` to fill and then rename into place; deleted on the way out if it is still
    there (the filling failed, or it lost a race)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(filled: Path, dest: Path) -> None:
    """Put a filled staged folder at `dest`. A non-empty `dest` is moved aside first and deleted only once the new
    one is in place, so an interruption never leaves neither."""
    old = None
    if dest.exists() and any(dest.iterdir()):
        old = dest.with_name(f".{dest.name}.old-{secrets.token_hex(4)}")
        os.rename(dest, old)
    elif dest.exists():
        dest.rmdir()
    os.rename(filled, dest)
    if old is not None:
        shutil.rmtree(old)
