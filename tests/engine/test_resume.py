"""Exact resume: a run killed with SIGKILL (mid-epoch, or while writing a checkpoint) and resumed produces the
same per-step losses and the same adapter as a run that was never interrupted (CPU, fp32). So does a run
whose data loads in worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

# 48 rows in batches of 4: 12 steps an epoch, so checkpoints at 10 and 20 fall mid-epoch. LoRA dropout
# makes the global RNG matter, so its restored state is tested too.
SPEC = """
name = "resume"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[lora]
dropout = 0.1
[train]
resolution = 32
random_flip = true
batch_size = 4
max_steps = 30
learning_rate = 1e-3
lr_scheduler = "cosine"
lr_warmup_steps = 5
log_every_steps = 1
checkpointing_steps = 10
checkpoints_total_limit = 1
cache = false
"""
STEPS_PER_EPOCH = 12
TOTAL = 30


def make_home(root: Path, builtin_home: Path) -> Path:
    return share_builtins(root / "home", builtin_home)


def cli(home: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "loratui", *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "LORATUI_HOME": str(home), **(env or {})},
                            **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run_dir(home: Path) -> Path:
    (folder,) = (home / "runs").iterdir()
    return folder


def steps_and_losses(folder: Path) -> dict[int, float]:
    """Losses by step, the last attempt's value winning where a resume repeated a step."""
    from engine.events import read_events

    return {e["step"]: e["loss"] for e in read_events(folder / "events.jsonl") if e["type"] == "step"}


def adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "pytorch_lora_weights.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, builtin_home):
    root = tmp_path_factory.mktemp("uninterrupted")
    home = make_home(root, builtin_home)
    (root / "run.toml").write_text(SPEC)
    code, _, err = finish(cli(home, "run", "--spec", str(root / "run.toml")))
    assert code == 0, err[-3000:]
    folder = run_dir(home)
    losses = steps_and_losses(folder)
    assert sorted(losses) == list(range(1, TOTAL + 1))
    return losses, adapter_tensors(folder)


def wait_for_step(folder: Path, proc: subprocess.Popen, minimum: int, timeout: float = 240) -> int:
    """The newest step event once it is at least `minimum` (bounded polling of a growing file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, finish(proc)[2][-3000:]
        steps = steps_and_losses(folder) if (folder / "events.jsonl").exists() else {}
        if steps and max(steps) >= minimum:
            return max(steps)
        time.sleep(0.02)
    raise AssertionError(f"no step {minimum} within {timeout} s")


def resume_and_compare(home: Path, run_id: str, uninterrupted) -> str:
    expected_losses, expected_adapter = uninterrupted
    code, out, err = finish(cli(home, "run", "--resume", run_id))
    assert code == 0, err[-3000:]
    folder = home / "runs" / run_id
    from engine.events import read_events

    events = read_events(folder / "events.jsonl")
    starts = [i for i, e in enumerate(events) if e["type"] == "run_started"]
    assert len(starts) == 2
    resumed_at = events[starts[1]]["resume_step"]
    assert resumed_at > 0 and resumed_at % STEPS_PER_EPOCH  # mid-epoch: batches of the epoch were skipped
    after = {e["step"]: e["loss"] for e in events[starts[1]:] if e["type"] == "step"}
    assert sorted(after) == list(range(resumed_at + 1, TOTAL + 1))
    assert after == {step: expected_losses[step] for step in after}  # exactly, not approximately
    adapter = adapter_tensors(folder)
    assert adapter.keys() == expected_adapter.keys()
    assert all((adapter[k] == expected_adapter[k]).all() for k in adapter)
    return err


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, builtin_home, uninterrupted):
    home = make_home(tmp_path, builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    proc = cli(home, "run", "--spec", str(tmp_path / "run.toml"))
    deadline = time.monotonic() + 240
    while not (home / "runs").exists() or not any((home / "runs").iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    folder = run_dir(home)
    step = wait_for_step(folder, proc, 13)
    while step % STEPS_PER_EPOCH == 0:  # kill off an epoch boundary
        step = wait_for_step(folder, proc, step + 1)
    (worker,) = [int(p.read_text()) for p in (folder / "pids").glob("rank-*")]
    os.kill(worker, signal.SIGKILL)
    code, _, err = finish(proc)
    assert code == 1 and "crashed" in err
    resume_and_compare(home, folder.name, uninterrupted)


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, builtin_home, uninterrupted):
    home = make_home(tmp_path, builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    # The training process SIGKILLs itself after renaming checkpoint-000020 into place, before COMPLETE.
    code, _, err = finish(cli(home, "run", "--spec", str(tmp_path / "run.toml"),
                              env={"LORATUI_FAULT_KILL_IN_CHECKPOINT": "20"}))
    assert code == 1 and "crashed" in err
    folder = run_dir(home)
    checkpoints = folder / "checkpoints"
    assert (checkpoints / "checkpoint-000010" / "COMPLETE").is_file()  # limit 1, yet never zero valid ones
    assert (checkpoints / "checkpoint-000020").is_dir() and not (checkpoints / "checkpoint-000020" / "COMPLETE").exists()
    resume_and_compare(home, folder.name, uninterrupted)
    from engine.events import read_events

    warnings = [e["message"] for e in read_events(folder / "events.jsonl") if e["type"] == "log"]
    assert "skipping incomplete checkpoint checkpoint-000020 (the run died while writing it)" in warnings
    assert "resumed from checkpoint-000010: step 10, epoch 0, sample 40" in warnings


def test_data_loading_workers_change_the_speed_not_the_losses(tmp_path, builtin_home, uninterrupted):
    home = make_home(tmp_path, builtin_home)
    spec = SPEC.replace("cache = false", "cache = false\ndataloader_num_workers = 2")
    (tmp_path / "run.toml").write_text(spec)
    code, _, err = finish(cli(home, "run", "--spec", str(tmp_path / "run.toml")))
    assert code == 0, err[-3000:]
    folder = run_dir(home)
    assert steps_and_losses(folder) == uninterrupted[0]  # 2.5 epochs: the workers outlive an epoch
    adapter = adapter_tensors(folder)
    assert all((adapter[k] == uninterrupted[1][k]).all() for k in uninterrupted[1])
