"""Adapter files under the library folder: placed whole (copy or symlinks) or not at all, removed on request."""

import os
import shutil
import tempfile
from pathlib import Path

from engine.adapters.inspect import locate
from engine.adapters.safeload import inside, safe_name
from engine.errors import LoratuiError
from engine.home import adapters_dir

MODES = ("inplace", "copy", "link")


def place(name: str, path: Path, files: list[Path], mode: str) -> tuple[Path, Path | None]:
    """Where the adapter will live, and the library folder created for it (None when left in place).

    The folder is filled under a hidden temporary name and renamed into place in one step, so a failure
    leaves nothing behind.
    """
    if mode not in MODES:
        raise LoratuiError(f"unknown import mode '{mode}'", f"choose one of: {', '.join(MODES)}")
    if mode == "inplace":
        return path, None
    root = adapters_dir()
    folder = inside(root, root / safe_name(name))
    if folder.exists() or folder.is_symlink():
        raise LoratuiError(f"library folder {folder} already exists", "remove it, or import under another --name")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for file in files:
            target = tmp / file.name
            if mode == "copy":
                shutil.copyfile(file, target)
            else:
                target.symlink_to(file.resolve())
        os.rename(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LoratuiError(f"could not {mode} the adapter into {root}: {exc.strerror}",
                           "check free space and permissions of LORATUI_HOME") from exc
    return (folder if path.is_dir() else folder / files[0].name), folder


def discard(folder: Path | None) -> None:
    """Undo place() after a later step failed."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def owned_folder(path: Path) -> Path | None:
    """The adapter's own folder under the library, if its files were copied or linked there."""
    root = adapters_dir().resolve()
    absolute = Path(os.path.abspath(path))
    if absolute.is_relative_to(root) and absolute != root:
        return root / absolute.relative_to(root).parts[0]
    return None


def delete_files(path: Path) -> list[str]:
    """Remove an adapter's files: its library folder whole (links, not their targets), else just its files."""
    folder = owned_folder(path)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        return [str(folder)]
    if not path.exists():
        return []
    _, _, files = locate(path)
    for file in files:
        file.unlink()
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    return [str(f) for f in files]
