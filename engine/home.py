"""Where loratui keeps its data: LORATUI_HOME, or a per-user data folder."""

import os
from pathlib import Path


def home() -> Path:
    """The root holding library.db, runs/, adapters/ and the built-in cache; created on first use."""
    env = os.environ.get("LORATUI_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        root = Path(base) / "loratui"
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_dir() -> Path:
    path = home() / "runs"
    path.mkdir(exist_ok=True)
    return path


def adapters_dir() -> Path:
    path = home() / "adapters"
    path.mkdir(exist_ok=True)
    return path


def builtin_cache() -> Path:
    path = home() / "builtin"
    path.mkdir(exist_ok=True)
    return path


def db_path() -> Path:
    return home() / "library.db"
