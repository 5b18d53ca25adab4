"""LORATUI_HOME folders for tests that start real processes, and quick commands run against one in-process."""

import contextlib
import io
import subprocess
from pathlib import Path

import pytest


def share_builtins(home: Path, builtin_home: Path) -> Path:
    """Create `home` (if needed) with the session's built-in cache linked in, so each built-in is built once."""
    home.mkdir(parents=True, exist_ok=True)
    (builtin_home / "builtin").mkdir(exist_ok=True)
    (home / "builtin").symlink_to(builtin_home / "builtin")
    return home


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """`loratui ARGS` run by loratui.cli.main in this process, against the test's LORATUI_HOME: (exit code,
    stdout, stderr)."""
    from loratui.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def inline(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`loratui ARGS` run by loratui.cli.main in this process against `home`: for quick commands (show, check,
    validate, refusals) that need no process of their own."""
    from loratui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setenv("LORATUI_HOME", str(home))
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
