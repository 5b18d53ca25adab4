"""[eval] in the training loop, for any task: held-out rows evaluated before training, on the schedule and at
the end; the figures reach the events, the runs row and the final line beside the base model's; keep_best
keeps the best adapter whole in best/. Text-to-image's eval metric is its loss on held-out rows."""

import json
import os
import subprocess
import sys

import pytest
from homes import inline, share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "evaluated"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 6
learning_rate = 1e-3
log_every_steps = 2
checkpointing_steps = 0
[eval]
split_ratio = 0.25
every_steps = 3
keep_best = "eval_loss"
"""


def test_held_out_rows_are_evaluated_before_on_schedule_and_at_the_end(tmp_path, builtin_home):
    from engine.events import read_events

    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(tmp_path / "run.toml")],
                         env={**os.environ, "LORATUI_HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = out.stdout.strip().splitlines()[-1]
    folder = home / "runs" / run_id
    evals = [e for e in read_events(folder / "events.jsonl") if e["type"] == "eval"]
    assert [(e["step"], sorted(e["metrics"])) for e in evals] == [(0, ["eval_loss"]), (3, ["eval_loss"]),
                                                                   (6, ["eval_loss"])]
    assert evals[0]["best"] is False and evals[1]["best"] is True  # the base is never kept as the best
    final, base = evals[-1]["metrics"]["eval_loss"], evals[0]["metrics"]["eval_loss"]
    assert f"eval eval_loss {final:.4f} (base {base:.4f})" in out.stderr

    shown = json.loads(inline(home, "runs", "show", run_id, "--json").stdout)
    assert shown["summary"]["metrics"] == evals[-1]["metrics"] and shown["summary"]["base_metrics"] == evals[0]["metrics"]
    text = inline(home, "runs", "show", run_id).stdout
    assert f"eval     eval_loss {final:.4f} (base {base:.4f})" in text
    entry = inline(home, "library", "show", run_id)
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in entry.stdout.splitlines()
             if ":" in line}
    assert lines["eval eval_loss"] == f"{final:.4g} (base model {base:.4g})" and lines["task"] == "text-to-image"
    best_step = max(e["step"] for e in evals if e["best"])
    from safetensors import safe_open

    with safe_open(folder / "best" / "pytorch_lora_weights.safetensors", "pt") as best:
        assert best.metadata()["loratui.steps"] == str(best_step)
    assert not any(p.name.startswith(".") for p in folder.iterdir())  # no half-written best left behind


def test_an_eval_split_and_a_held_out_share_are_exclusive():
    from engine.spec import spec_errors

    errors = spec_errors({"name": "x", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
                          "train": {"max_steps": 2}, "eval": {"split": "test", "split_ratio": 0.2}})
    assert errors == ["eval.split_ratio: set split or split_ratio, not both (split is also set)"]


def test_an_eval_split_the_data_lacks_is_refused_at_preflight(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "run.toml").write_text(SPEC.replace("split_ratio = 0.25", 'split = "validation"'))
    out = inline(home, "spec", "validate", str(tmp_path / "run.toml"))
    assert out.returncode == 2
    assert out.stderr.splitlines()[1].strip().startswith("eval.split: cannot load 'builtin:shapes' (split 'validation')")


def test_a_problem_both_splits_share_is_said_once(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    spec = SPEC.replace('source = "builtin:shapes"', 'source = "builtin:shapes-masks"').replace(
        "split_ratio = 0.25", 'split = "test"')
    (tmp_path / "run.toml").write_text(spec)  # shapes-masks has no captions, in either split
    out = inline(home, "spec", "validate", str(tmp_path / "run.toml"))
    problems = [line.strip() for line in out.stderr.splitlines()[1:-1]]
    assert out.returncode == 2 and problems == [
        "data.caption_column: no column 'text' in builtin:shapes-masks (columns: image, mask)"], out.stderr
