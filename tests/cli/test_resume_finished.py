"""A finished run is not trained again by a plain resume (that would only register its adapter twice): it is
refused at once, and `--max-steps N` trains it on from its last checkpoint to step N, on its schedule
stretched to N, registering one new adapter and recording N for later resumes."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "longer"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 4
learning_rate = 1e-3
lr_scheduler = "linear"
log_every_steps = 1
checkpointing_steps = 1
checkpoints_total_limit = 0
"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loratui", *args], env={**os.environ, "LORATUI_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)


def refused(out: subprocess.CompletedProcess, message: str) -> str:
    """The hint of a one-line refusal."""
    assert out.returncode == 2, out.stderr[-3000:]
    error, hint = out.stderr.splitlines()
    assert error == f"error: {message}"
    return hint


def lora(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(checkpoint / "lora.safetensors")


def test_a_finished_run_trains_on_only_to_a_larger_max_steps(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    first = cli(home, "run", "--spec", str(tmp_path / "run.toml"))
    assert first.returncode == 0, first.stderr[-3000:]
    run_id = first.stdout.strip().splitlines()[-1]

    # Refused from the runs row alone: no preflight, no torch (~0.7 s measured; the bound only guards against
    # a regression on a busy machine, the module check says why it is fast).
    started = time.monotonic()
    script = ("import sys\nfrom loratui.cli import main\ncode = main(sys.argv[1:])\n"
              "print(sorted({'torch', 'datasets', 'diffusers'} & set(sys.modules)))\nsys.exit(code)")
    plain = subprocess.run([sys.executable, "-c", script, "run", "--resume", run_id], capture_output=True, text=True,
                           env={**os.environ, "LORATUI_HOME": str(home)}, timeout=60)
    elapsed = time.monotonic() - started
    hint = refused(plain, f"run '{run_id}' finished at step 4: there is nothing to resume")
    assert "--max-steps" in hint and plain.stdout.strip() == "[]" and elapsed < 10, (plain.stdout, elapsed)
    for n in (3, 4):
        refused(cli(home, "run", "--resume", run_id, "--max-steps", str(n)),
                f"--max-steps {n} is not above step 4, which run '{run_id}' reached")
    stop = cli(home, "runs", "stop", run_id)
    assert "--resume" not in refused(stop, f"run '{run_id}' is not running (status: finished)")
    (tmp_path / "latest.toml").write_text(SPEC.replace("max_steps = 4", 'max_steps = 4\nresume_from_checkpoint = "latest"'))
    assert "train.max_steps" in refused(cli(home, "run", "--spec", str(tmp_path / "latest.toml")),
                                        f"run '{run_id}' finished at step 4: there is nothing to resume")

    more = cli(home, "run", "--resume", run_id, "--max-steps", "8")
    assert more.returncode == 0, more.stderr[-3000:]
    folder = home / "runs" / run_id
    from engine.events import read_events

    events = read_events(folder / "events.jsonl")
    starts = [(e["resume_step"], e["total_steps"]) for e in events if e["type"] == "run_started"]
    assert starts == [(0, 4), (4, 8)]
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert steps[3]["lr"] == 0 and steps[4]["lr"] > steps[5]["lr"] > steps[6]["lr"] > 0  # linear, stretched to 8
    # The first step trained on moves the weights: it used the stretched schedule, not the finished one's 0.
    before, after = lora(folder / "checkpoints" / "checkpoint-000004"), lora(folder / "checkpoints" / "checkpoint-000005")
    assert any((before[key] != after[key]).any() for key in before)

    shown = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert (shown["status"], shown["step"], shown["total_steps"]) == ("finished", 8, 8)
    assert "max_steps = 8" in shown["spec"] and "max_steps = 8" in (folder / "spec.toml").read_text()
    with sqlite3.connect(home / "library.db") as db:
        assert db.execute("SELECT count(*) FROM adapters WHERE source_run = ?", [run_id]).fetchone() == (2,)
    refused(cli(home, "run", "--resume", run_id), f"run '{run_id}' finished at step 8: there is nothing to resume")

    # Both adapters are library entries of their own, stored by content: the step-8 weights written over the
    # run folder's file did not change the step-4 entry, and removing one entry's files spares the other's.
    entries = json.loads(cli(home, "library", "ls", "--json").stdout)
    assert [(e["name"], e["status"], e["storage"]) for e in entries] == [
        (f"{run_id}-step8", "ok", "store"), (run_id, "ok", "store")]
    assert all(Path(e["path"]).is_relative_to(home / "adapters") for e in entries)
    from engine.adapters.inspect import content_hash

    assert content_hash(folder / "pytorch_lora_weights.safetensors") == entries[0]["sha256"]  # the run's own copy
    assert cli(home, "library", "check").returncode == 0
    removed = cli(home, "library", "rm", run_id, "--delete-files")
    assert removed.returncode == 0 and "deleted" in removed.stdout
    check = cli(home, "library", "check")
    assert check.returncode == 0 and check.stdout.strip() == "1 adapter checked: every file is as registered"
