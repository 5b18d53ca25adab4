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
    """Run the CLI and return what it printed on stdout. Its output goes to files, not pipes: a detached
    run that inherited a pipe would keep it open, and reading it would wait for the whole run."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loratui", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True, env=os.environ.copy(),
        )
        try:
            code = proc.wait(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise LoratuiError(f"`loratui {' '.join(args)}` did not return within {LAUNCH_TIMEOUT_S} s",
                               hint="the run may still be starting; check the runs list") from exc
        out.seek(0)
        err.seek(0)
        printed = out.read().decode("utf-8", "replace").strip()
        complaints = err.read().decode("utf-8", "replace").strip().splitlines()
    if code != 0:
        error = next((line[7:] for line in complaints if line.startswith("error: ")), "")
        hint = next((line[6:] for line in complaints if line.startswith("hint: ")), "")
        if not error:
            error = complaints[-1] if complaints else f"exit code {code}"
        raise LoratuiError(f"`loratui {' '.join(args)}` failed: {error}", hint=hint)
    return printed


def launched_run_id(printed: str) -> str | None:
    """`loratui run --detach` prints the run id as its last line."""
    lines = printed.splitlines()
    return lines[-1].strip() if lines else None


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
