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


def _start(home, tmp_path, name: str, launch: str) -> subprocess.Popen:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(name=name, launch=launch))
    return subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "LORATUI_HOME": str(home)})


def _base_eval(home, proc: subprocess.Popen, processes: int) -> dict:
    from engine.events import read_events

    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    events = read_events(home / "runs" / out.strip().splitlines()[-1] / "events.jsonl")
    assert next(e for e in events if e["type"] == "run_started")["num_processes"] == processes
    return next(e["metrics"] for e in events if e["type"] == "eval" and e["step"] == 0)


def test_two_processes_report_the_metrics_of_one(tmp_path, builtin_home, monkeypatch):
    from engine import builtin

    home = share_builtins(tmp_path / "home", builtin_home)
    monkeypatch.setenv("LORATUI_HOME", str(home))
    for ref in ("builtin:tiny-bert", "builtin:tiny-reviews"):
        builtin.path(ref)  # built here once, not by the two runs racing
    # Both runs start together (their start-up shares the cores).
    # 80 test rows in batches of 12 per process: the last round is uneven and padded, then unpadded again.
    alone = _start(home, tmp_path, "one", "num_processes = 1")
    shared = _start(home, tmp_path, "two", "num_processes = 2\nmulti_gpu = true")
    one, two = _base_eval(home, alone, 1), _base_eval(home, shared, 2)
    assert one["accuracy"] == two["accuracy"] and one["f1_macro"] == two["f1_macro"]
    assert abs(one["eval_loss"] - two["eval_loss"]) < 1e-6
