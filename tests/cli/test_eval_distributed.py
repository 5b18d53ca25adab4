"""Evaluation on several processes: each evaluates its shard, gather_for_metrics puts the outputs back together
without the padding the last uneven batch needed, so 2 processes report exactly the metrics 1 process does."""

import os
import subprocess
import sys

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "{name}"
task = "sequence-classification"
[model]
pretrained = "builtin:tiny-bert"
[data]
source = "builtin:tiny-reviews"
[train]
batch_size = 8
max_steps = 1
checkpointing_steps = 0
[eval]
split = "test"
batch_size = 12
[launch]
{launch}
"""


def _base_eval(home, tmp_path, name: str, launch: str) -> dict:
    from engine.events import read_events

    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(name=name, launch=launch))
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(spec)], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "LORATUI_HOME": str(home)})
    assert out.returncode == 0, out.stderr[-3000:]
    events = read_events(home / "runs" / out.stdout.strip().splitlines()[-1] / "events.jsonl")
    assert next(e for e in events if e["type"] == "run_started")["num_processes"] == (2 if "multi_gpu" in launch else 1)
    return next(e["metrics"] for e in events if e["type"] == "eval" and e["step"] == 0)


def test_two_processes_report_the_metrics_of_one(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    # 80 test rows in batches of 12 per process: the last round is uneven and padded, then unpadded again.
    one = _base_eval(home, tmp_path, "one", "num_processes = 1")
    two = _base_eval(home, tmp_path, "two", "num_processes = 2\nmulti_gpu = true")
    assert one["accuracy"] == two["accuracy"] and one["f1_macro"] == two["f1_macro"]
    assert abs(one["eval_loss"] - two["eval_loss"]) < 1e-6
