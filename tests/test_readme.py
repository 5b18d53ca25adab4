"""README's two set-up commands stay true: CI runs the test command, and the main job runs and learns."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    return re.findall(r"```sh\n\s*(.+?)\n\s*```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    install_and_run, test = _commands()[:2]
    assert "pip install torch==2.13.0" in install_and_run
    assert "loratui run --spec" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text()
    assert test.split("&& ", 1)[1] in ci


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the model's build is two minutes quiet, and may take three times that beside others
def test_main_job_learns_what_its_base_cannot(tmp_path):
    """Command 1 as a newcomer runs it: builtin:tiny-sd-shapes (built by training, the real recipe) learns the
    shapes at night. The held-out loss falls by more than half, the sample darkens, and the last lines name
    the adapter's library entry and its file."""
    import numpy as np
    from PIL import Image

    spec = re.search(r"loratui run --spec (\S+)", _commands()[0]).group(1)
    env = {**os.environ, "LORATUI_HOME": str(tmp_path / "home")}
    for command in (["spec", "validate", spec], ["run", "--spec", spec]):
        out = subprocess.run([sys.executable, "-m", "loratui", *command], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stderr.splitlines()
    final, base = map(float, re.search(r"eval eval_loss ([\d.]+) \(base ([\d.]+)\)", out.stderr).groups())
    assert final < 0.5 * base, (final, base)
    assert re.fullmatch(r"  adapter: shapes-demo-\S+ \(library id 1\)", lines[-2])
    adapter = Path(lines[-1].removeprefix("  file: "))
    assert adapter.is_file() and adapter.name == "pytorch_lora_weights.safetensors"
    samples = sorted((tmp_path / "home" / "runs").glob("shapes-demo-*/samples/step-*.png"))
    assert samples[0].name == "step-000000-0.png" and samples[-1].name == "step-000200-0.png"
    brightness = [np.asarray(Image.open(path).convert("L"), dtype=float).mean() for path in (samples[0], samples[-1])]
    assert brightness[1] < brightness[0] - 30, brightness
