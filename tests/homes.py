"""LORATUI_HOME folders for tests that start real processes."""

from pathlib import Path


def share_builtins(home: Path, builtin_home: Path) -> Path:
    """Create `home` (if needed) with the session's built-in cache linked in, so each built-in is built once."""
    home.mkdir(parents=True, exist_ok=True)
    (builtin_home / "builtin").mkdir(exist_ok=True)
    (home / "builtin").symlink_to(builtin_home / "builtin")
    return home
