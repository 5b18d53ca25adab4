"""README's two set-up commands stay true: CI runs the test command, and the main job's spec is valid."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    return re.findall(r"```sh\n\s*(.+?)\n\s*```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    install_and_run, test = _commands()[:2]
    assert "pip install torch==2.13.0" in install_and_run
    assert "loratui run --spec" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text()
    assert test.split("&& ", 1)[1] in ci


def test_main_job_spec_is_valid():
    spec = re.search(r"loratui run --spec (\S+)", _commands()[0]).group(1)
    out = subprocess.run([sys.executable, "-m", "loratui", "spec", "validate", spec], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
