"""Scaling out, on this machine's CPUs: a checkpoint resumes with another process count; two "machines" on
127.0.0.1 train one run; a rank that dies or hangs fails the run, named, within launch.timeout_s; a launch
accelerate cannot honour and a distributed kind a task does not support are refused in one line."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from homes import inline, share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "{name}"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[lora]
dropout = 0.1
[train]
resolution = 32
batch_size = 2
max_steps = {steps}
learning_rate = 1e-3
lr_scheduler = "linear"
lr_warmup_steps = 2
log_every_steps = 1
checkpointing_steps = 0
resume_from_checkpoint = "latest"
cache = false
[launch]
{launch}
"""


def _spec(tmp_path: Path, name: str, launch: str, steps: int = 6) -> Path:
    path = tmp_path / f"{name}-{abs(hash(launch)) % 10_000}.toml"
    path.write_text(SPEC.format(name=name, steps=steps, launch=launch))
    return path


def _run(home: Path, *args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loratui", "run", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "LORATUI_HOME": str(home), **(env or {})})


def _events(home: Path) -> list[dict]:
    from engine.events import read_events

    (folder,) = (home / "runs").iterdir()
    return read_events(folder / "events.jsonl")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_checkpoint_resumes_with_another_process_count(tmp_path, builtin_home):
    """2 processes stop at step 2, 1 process resumes (`--resume ID --num-processes 1`) and stops at 4, 2 processes
    finish at 6 (the spec again, resuming "latest"): each resume continues at the sample where the last stopped,
    with the optimizer's state and the schedule's step."""
    home = share_builtins(tmp_path / "home", builtin_home)
    two = _spec(tmp_path, "elastic", "num_processes = 2")
    out = _run(home, "--spec", str(two), env={"LORATUI_FAULT_STOP_AFTER_STEP": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    run_id = out.stdout.split()[-1]
    for args, stop in ((["--resume", run_id, "--num-processes", "1"], "4"), (["--spec", str(two)], None)):
        out = _run(home, *args, env={"LORATUI_FAULT_STOP_AFTER_STEP": stop} if stop else {})
        assert out.returncode == 0, out.stderr[-2000:]
    events = _events(home)
    resumed = [e["message"] for e in events if e["type"] == "log" and e["message"].startswith("resumed")]
    # 2 steps of 2 processes x 2 rows, then 2 steps of 1 process x 2 rows
    assert resumed == ["resumed from checkpoint-000002: step 2, epoch 0, sample 8 (saved by 2 processes, now 1)",
                       "resumed from checkpoint-000004: step 4, epoch 0, sample 12 (saved by 1 process, now 2)"]
    steps = [e for e in events if e["type"] == "step" and e["loss"] is not None]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6] and events[-1]["type"] == "run_finished"
    # The lr after each step follows one 6-step schedule (2 warm-up steps, linear to 0) whatever the count.
    assert [round(e["lr"], 8) for e in steps] == [5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0]
    (folder,) = (home / "runs").iterdir()
    optimizer = torch.load(folder / "checkpoints" / "checkpoint-000004" / "optimizer.pt", weights_only=True)
    assert {float(s["step"]) for s in optimizer["state"].values()} == {4.0}  # AdamW carried its 2 + 2 steps


def test_two_machines_on_this_machine_train_one_run(tmp_path, builtin_home):
    launch = (f'num_processes = 2\nnum_machines = 2\nmain_process_ip = "127.0.0.1"\n'
              f"main_process_port = {_free_port()}\ntimeout_s = 60")
    spec = _spec(tmp_path, "nodes", launch, steps=4)
    main, other = (share_builtins(tmp_path / f"machine{k}", builtin_home) for k in (0, 1))
    joined = subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(spec), "--machine-rank", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "LORATUI_HOME": str(other)})
    out = _run(main, "--spec", str(spec))
    err = joined.communicate(timeout=120)[1]
    assert out.returncode == 0 and joined.returncode == 0, out.stderr[-1500:] + err[-1500:]
    assert "machine 1 of 2: joining the run at 127.0.0.1" in err
    started = next(e for e in _events(main) if e["type"] == "run_started")
    assert started["num_processes"] == 2
    adapters = json.loads(inline(main, "library", "ls", "--json").stdout)
    assert len(adapters) == 1
    # The other machine wrote nothing of the run: no run folder, no events, no library, no checkpoint.
    assert not (other / "runs").exists() and not (other / "library.db").exists()
    node = other / "nodes" / "nodes-machine1"
    assert sorted(p.name for p in node.iterdir()) == ["pids", "preflight.json", "run.log", "spec.toml"]


@pytest.mark.parametrize("fault, said", [
    ("KILL", "training process rank 1 (pid"),
    ("HANG", "lost contact with another training process (Timed out"),
])
def test_a_dead_or_hung_rank_fails_the_run_within_the_timeout(tmp_path, builtin_home, fault, said):
    home = share_builtins(tmp_path / "home", builtin_home)
    spec = _spec(tmp_path, "faulty", "num_processes = 2\ntimeout_s = 5", steps=30)
    out = _run(home, "--spec", str(spec), env={f"LORATUI_FAULT_{fault}_RANK1_AFTER_STEP": "2"}, timeout=150)
    assert out.returncode == 1
    failed = _events(home)[-1]
    assert failed["type"] == "run_failed" and failed["step"] == 2
    assert failed["reason"].startswith(said), failed["reason"]
    assert "error: run faulty-" in out.stderr and said in out.stderr
    assert "Traceback" not in out.stderr


def test_fsdp_that_accelerate_does_not_honour_fails_at_once(tmp_path, builtin_home):
    """On CPU, `accelerate launch --use_fsdp` never shards (accelerate turns only GPU process groups into FSDP):
    each process sees it got plain data parallelism and stops before training, and the main one says so."""
    from engine.rundir import RunDir

    share_builtins(tmp_path / "home", builtin_home)
    run = RunDir(tmp_path / "run").create(SPEC.format(name="fsdp", steps=4, launch="num_processes = 2"))
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2",
                          "--num_machines", "1", "--dynamo_backend", "no", "--use_fsdp", "--fsdp_version", "2",
                          "--main_process_port", str(_free_port()), "--mixed_precision", "no", "-m", "engine.train",
                          str(run.path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LORATUI_HOME": str(tmp_path / "home")})
    assert out.returncode != 0
    said = ("launched as 2 processes with fsdp, but this process got 2 processes with ddp "
            "(DistributedType.MULTI_CPU): accelerate shards with FSDP only on GPUs, and this machine has no CUDA")
    assert out.stderr.count(f"error: {said}") == 2  # each process
    from engine.events import read_events

    assert [(e["type"], e["reason"]) for e in read_events(run.events)] == [("run_failed", said)]
    assert not list(run.checkpoints.iterdir()) and not (run.path / "pytorch_lora_weights.safetensors").exists()


def test_distributed_kinds_a_task_does_not_support_are_refused_at_preflight(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    config = tmp_path / "zero3.yaml"
    config.write_text("distributed_type: DEEPSPEED\nnum_processes: 2\ndeepspeed_config:\n  zero_stage: 3\n")
    chat = Path(__file__).resolve().parents[2] / "examples" / "chat-tiny-llama.toml"
    lm = tmp_path / "lm.toml"
    lm.write_text(chat.read_text() + '\n[launch]\ndistributed = "fsdp"\nnum_processes = 2\n')
    cases = [
        (_spec(tmp_path, "t2i", 'distributed = "fsdp"\nnum_processes = 2'),
         "launch.distributed: fsdp is not supported for text-to-image (supported: ddp;"),
        (_spec(tmp_path, "t2i", f'config_file = "{config}"'),
         "launch.distributed: deepspeed-zero3 is not supported for text-to-image (supported: ddp;"),
        (lm, "launch.distributed: fsdp needs CUDA GPUs, and this machine has none"),
    ]
    for spec, said in cases:
        out = inline(home, "run", "--spec", str(spec))
        assert out.returncode == 2 and said in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    assert not list((home / "runs").glob("*"))


def test_num_processes_goes_with_resume(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    out = inline(home, "run", "--spec", str(_spec(tmp_path, "one", "num_processes = 1")), "--num-processes", "2")
    assert out.returncode == 2 and "error: --num-processes N (N from 1) goes with --resume RUN_ID" in out.stderr


def test_machine_rank_needs_a_spec_for_several_machines(tmp_path, builtin_home, monkeypatch):
    home = share_builtins(tmp_path / "home", builtin_home)
    out = inline(home, "run", "--spec", str(_spec(tmp_path, "one", "num_processes = 1")), "--machine-rank", "1")
    assert out.returncode == 2
    assert "error: --machine-rank: the spec's launch.num_machines (or the accelerate config's) is not above 1" \
        in out.stderr
    spec = _spec(tmp_path, "two", 'num_machines = 2\nmain_process_ip = "10.0.0.1"\nmain_process_port = 29500')
    out = inline(home, "run", "--spec", str(spec), "--machine-rank", "2")
    assert out.returncode == 2 and "error: --machine-rank 2 is not below launch.num_machines (2)" in out.stderr
    config = tmp_path / "hf" / "accelerate" / "default_config.yaml"  # machines set up by the accelerate config
    config.parent.mkdir(parents=True)
    config.write_text("distributed_type: MULTI_GPU\nnum_machines: 3\nmain_process_ip: 10.0.0.1\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = inline(home, "run", "--spec", str(_spec(tmp_path, "three", "num_processes = 3")), "--machine-rank", "3")
    assert out.returncode == 2 and "error: --machine-rank 3 is not below launch.num_machines (3)" in out.stderr
