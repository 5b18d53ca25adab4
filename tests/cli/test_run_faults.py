"""Bad numbers and lack of memory: a NaN loss stops the run (or is skipped, up to a limit) and no
non-finite weight is ever saved; a CUDA out-of-memory error fails the run with concrete hints, keeping the
last checkpoint. Faults are injected at a chosen step through LORATUI_FAULT_* (engine/faults.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "faults"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 8
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 2
checkpoints_total_limit = 0
"""


def run(tmp_path: Path, builtin_home: Path, extra: str, **faults: str):
    home = tmp_path / "home"
    if not home.exists():
        share_builtins(home, builtin_home)
    (tmp_path / "run.toml").write_text(SPEC + extra)
    env = {**os.environ, "LORATUI_HOME": str(home), **{f"LORATUI_FAULT_{k}": v for k, v in faults.items()}}
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(tmp_path / "run.toml")], env=env,
                         capture_output=True, text=True, timeout=300)
    (folder,) = (home / "runs").iterdir()  # a resume continues in the same folder
    from engine.events import read_events

    return out, folder, read_events(folder / "events.jsonl")


def all_finite(folder: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    files = [*folder.glob("checkpoints/*/lora.safetensors"), *folder.glob("*.safetensors")]
    return bool(files) and all(torch.isfinite(t).all() for f in files for t in load_file(f).values())


def test_nan_loss_stops_the_run_and_saves_nothing_non_finite(tmp_path, builtin_home):
    out, folder, events = run(tmp_path, builtin_home, "", NAN_AT_STEP="5")
    assert out.returncode == 1
    assert "error: run faults-" in out.stderr and "failed at step 4: loss is NaN or infinite at step 5" in out.stderr
    assert 'train.on_nan = "skip"' in out.stderr and "Traceback" not in out.stderr
    failed = events[-1]
    assert failed["type"] == "run_failed" and failed["reason"] == "loss is NaN or infinite at step 5"
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["checkpoint-000002", "checkpoint-000004"]
    assert not (folder / "pytorch_lora_weights.safetensors").exists()
    assert all_finite(folder)


def test_skipped_nan_steps_are_counted_and_the_run_finishes(tmp_path, builtin_home):
    out, folder, events = run(tmp_path, builtin_home, 'on_nan = "skip"\nnan_skip_limit = 1\n', NAN_AT_STEP="5")
    assert out.returncode == 0, out.stderr[-2000:]
    warnings = [e["message"] for e in events if e["type"] == "log" and e["level"] == "warning"]
    assert warnings == ["loss is NaN or infinite at step 5: update skipped (1 of at most 1)"]
    steps = {e["step"]: e for e in events if e["type"] == "step"}
    assert sorted(steps) == list(range(1, 9)) and steps[5]["loss"] is None  # no finite loss that step
    assert json.loads((folder / "checkpoints" / "checkpoint-000008" / "state.json").read_text())["nan_skipped"] == 1
    assert all_finite(folder)


def test_out_of_memory_fails_with_hints_and_resuming_latest_continues(tmp_path, builtin_home):
    """Out of memory at step 3: a failure with hints, checkpoint 2 kept. Resuming "latest" with a damaged
    part fails loudly; with the part repaired, it continues in the same folder to the end."""
    import shutil

    out, folder, events = run(tmp_path, builtin_home, "", OOM_AT_STEP="3")
    assert out.returncode == 1
    failed = events[-1]
    assert failed["type"] == "run_failed" and failed["reason"] == "CUDA out of memory at step 3"
    assert "lower train.batch_size (now 4)" in failed["hint"]
    assert "train.gradient_checkpointing = true" in failed["hint"] and "mixed_precision" in failed["hint"]
    assert "hint: lower train.batch_size (now 4)" in out.stderr
    assert (folder / "checkpoints" / "checkpoint-000002" / "COMPLETE").is_file()
    (rng,) = (tmp_path / "home" / "runs").glob("*/checkpoints/checkpoint-000002/rng-0.pt")
    shutil.copy(rng, tmp_path / "rng-0.pt")
    rng.write_bytes(rng.read_bytes()[:100])
    resume = 'resume_from_checkpoint = "latest"\n'  # appended to [train]
    out, folder, events = run(tmp_path, builtin_home, resume)
    assert out.returncode == 1
    assert "checkpoint checkpoint-000002: rng-0.pt does not load" in events[-1]["reason"]
    shutil.copy(tmp_path / "rng-0.pt", rng)
    out, folder, events = run(tmp_path, builtin_home, resume)
    assert out.returncode == 0, out.stderr[-2000:]
    starts = [e for e in events if e["type"] == "run_started"]
    assert [s["resume_step"] for s in starts] == [0, 2] and events[-1]["type"] == "run_finished"
    assert "resumed from checkpoint-000002: step 2, epoch 0, sample 8" in [e.get("message") for e in events]


def test_a_training_process_killed_by_a_signal_is_said_to_be(tmp_path, builtin_home):
    """accelerate launch exits 1 whatever killed its child; the run says what did, as the OOM killer's kill -9
    would have it."""
    out, folder, events = run(tmp_path, builtin_home, "", KILL_RANK0_AFTER_STEP="3")
    assert out.returncode == 1 and events[-1]["type"] == "step" and events[-1]["step"] == 3
    said = "a training process was killed by signal 9 (SIGKILL) without recording an end"
    assert f"crashed at step 3: {said}" in out.stderr, out.stderr[-2000:]
    home = tmp_path / "home"
    from homes import inline

    (row,) = json.loads(inline(home, "runs", "ls", "--json").stdout)
    assert (row["status"], row["error"]) == ("crashed", said)
