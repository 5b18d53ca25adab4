"""Starting runs from the dashboard: `loratui run ... --detach` in its own session, so neither quitting
the dashboard nor losing the SSH link (SIGHUP to the terminal's process group) reaches the run."""

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime

from engine.errors import LoratuiError
from engine.home import home

LAUNCH_TIMEOUT_S = 120


def loratui_cli(args: list[str]) -> str:
    """Run the CLI and return what it printed. Its output goes to a file, not a pipe: a detached run that
    inherited the pipe would keep it open, and reading it would wait for the whole run."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loratui", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=os.environ.copy(),
        )
        try:
            code = proc.wait(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise LoratuiError(f"`loratui {' '.join(args)}` did not return within {LAUNCH_TIMEOUT_S} s",
                               hint="the run may still be starting; check the runs list") from exc
        out.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
    if code != 0:
        lines = text.splitlines()
        error = next((line[7:] for line in lines if line.startswith("error: ")), lines[-1] if lines else "")
        hint = next((line[6:] for line in lines if line.startswith("hint: ")), "")
        raise LoratuiError(f"`loratui {' '.join(args)}` failed: {error or f'exit code {code}'}", hint=hint)
    return text


def resume(run_id: str) -> str:
    return loratui_cli(["run", "--resume", run_id, "--detach"])


def duplicate(run_id: str, spec_toml: str) -> str:
    """Launch a new run from a copy of the spec, kept under LORATUI_HOME/specs/ for reference."""
    folder = home() / "specs"
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    copy = folder / f"{run_id}-copy-{stamp}.toml"
    copy.write_text(spec_toml, encoding="utf-8")
    return loratui_cli(["run", "--spec", str(copy), "--detach"])
