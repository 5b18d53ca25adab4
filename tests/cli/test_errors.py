"""The CLI turns expected failures into one line plus a hint, and bugs into a saved traceback."""

import subprocess
import sys


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "loratui", *args], capture_output=True, text=True, env=env)


def test_unknown_builtin_is_one_line_with_hint():
    out = _cli("builtin", "path", "builtin:nope")
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == "error: unknown built-in 'builtin:nope'"
    assert out.stderr.splitlines()[1].startswith("hint: available:")
    assert "Traceback" not in out.stderr


def test_builtin_ls_lists_every_builtin():
    out = _cli("builtin", "ls", "--json")
    assert out.returncode == 0
    import json

    names = {row["name"] for row in json.loads(out.stdout)}
    assert {"tiny-sd", "tiny-sdxl", "tiny-llama", "shapes", "tiny-text"} <= names
