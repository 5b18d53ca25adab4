"""Starting a run: validate, preflight, make the run folder and its runs row, start `accelerate launch`.

Training always runs in its own processes, started through accelerate (so the user's accelerate config
applies), in a session of their own: a Ctrl-C in the terminal reaches only the supervisor, which asks
each training process to stop exactly once, so none is killed half-way through a write.
"""

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine import preflight
from engine.errors import LoratuiError
from engine.rundir import RunDir, new_run_dir, write_atomic
from engine.spec import Spec, load_spec
from engine.stopping import SUPERVISOR_PID, SUPERVISOR_START
from loratui.runs.liveness import process_start_time


@dataclass
class Plan:
    spec: Spec
    run: RunDir
    resume: str | None = None  # "latest", a checkpoint folder, or None for a fresh start
    skip_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.run_id


def plan_run(db, spec_path: str | None = None, *, resume_id: str | None = None, spec: Spec | None = None) -> Plan:
    """Everything checked, nothing created yet: a bad spec or dataset fails here, in seconds."""
    if resume_id:
        row = _run_row(db, resume_id)
        run = RunDir(row["dir"])
        if not run.spec.is_file():
            raise LoratuiError(f"run '{resume_id}' has no spec.toml in {run.path}", hint="the run folder was removed")
        plan = Plan(load_spec(run.spec), run, "latest")
    else:
        spec = spec or preflight.load_checked(spec_path)
        run, resume = _run_folder(db, spec)
        plan = Plan(spec, run, resume)
    report = preflight.check(plan.spec, plan.run.path)
    report.raise_if_failed()
    plan.skip_rows, plan.notes = report.skip_rows, report.notes
    return plan


def _run_row(db, run_id: str) -> dict:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise LoratuiError(f"unknown run '{run_id}'", hint="`loratui runs ls` lists the runs")
    return rows[0]


def _run_folder(db, spec: Spec) -> tuple[RunDir, str | None]:
    """Where the run goes: a fresh folder, or, to resume, the folder of the run it continues."""
    value = spec.train.resume_from_checkpoint
    if value == "latest":
        if spec.output.dir and (Path(spec.output.dir).expanduser() / "spec.toml").is_file():
            return RunDir(Path(spec.output.dir).expanduser().resolve()), value
        previous = list(db.query("SELECT dir FROM runs WHERE name = ? ORDER BY created DESC, rowid DESC LIMIT 1",
                                 [spec.name]))
        if previous and (Path(previous[0]["dir"]) / "spec.toml").is_file():
            return RunDir(previous[0]["dir"]), value
    elif value:
        checkpoint = Path(value).expanduser().resolve()
        run = RunDir(checkpoint.parent.parent)
        if not run.spec.is_file():
            raise LoratuiError(f"train.resume_from_checkpoint: {checkpoint} is not inside a loratui run folder",
                               hint="name a runs/<id>/checkpoints/checkpoint-NNNNNN folder, or use \"latest\"")
        return run, str(checkpoint)
    run = new_run_dir(spec.name, spec.output.dir)
    clash = list(db.query("SELECT dir FROM runs WHERE id = ?", [run.run_id]))
    if clash and Path(clash[0]["dir"]) != run.path:
        raise LoratuiError(f"a run named '{run.run_id}' already exists in {clash[0]['dir']}",
                           hint="choose another output.dir, or leave it empty")
    return run, None


def prepare(db, plan: Plan) -> None:
    """Create (or reuse) the run folder and record the run as running."""
    plan.run.create(plan.spec.to_toml())
    write_atomic(plan.run.preflight, json.dumps({"skip_rows": plan.skip_rows, "notes": plan.notes}))
    plan.run.clear_pids()
    values = {"name": plan.spec.name, "task": plan.spec.task, "dir": str(plan.run.path), "spec": plan.spec.to_toml(),
              "spec_hash": plan.spec.hash(), "base_model": plan.spec.model.pretrained, "status": "running",
              "ended": None, "error": None, "pid": os.getpid(), "pid_start": process_start_time(os.getpid())}
    with db.conn:
        if list(db.query("SELECT id FROM runs WHERE id = ?", [plan.run_id])):
            db["runs"].update(plan.run_id, values)
        else:
            db["runs"].insert({"id": plan.run_id, **values})


def record_supervisor(db, run_id: str, pid: int) -> None:
    with db.conn:
        db["runs"].update(run_id, {"pid": pid, "pid_start": process_start_time(pid)})


def accelerate_command(plan: Plan) -> list[str]:
    launch = plan.spec.launch
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file:
        cmd += ["--config_file", launch.config_file]
    if launch.config_file or default_accelerate_config().is_file():
        if launch.num_processes:  # the config's values stand unless the spec sets them
            cmd += ["--num_processes", str(launch.num_processes)]
    else:
        # accelerate's own defaults, passed so it does not warn that it used them
        cmd += ["--num_processes", str(launch.num_processes or 1), "--num_machines", "1", "--dynamo_backend", "no"]
    if launch.multi_gpu:
        cmd += ["--multi_gpu"]
    if launch.num_processes > 1 or launch.multi_gpu:
        cmd += ["--main_process_port", str(_free_port())]  # two runs on one box must not share a port
    if launch.gpu_ids:
        cmd += ["--gpu_ids", launch.gpu_ids]
    cmd += ["--mixed_precision", plan.spec.train.mixed_precision, "-m", "engine.train", str(plan.run.path)]
    if plan.resume:
        cmd += ["--resume", plan.resume]
    return cmd


def default_accelerate_config() -> Path:
    """Where `accelerate config` writes and `accelerate launch` reads its default config (accelerate's rule)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.environ.get("HF_HOME", os.path.join(cache, "huggingface"))).expanduser() / "accelerate" / \
        "default_config.yaml"


def start_training(plan: Plan) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", SUPERVISOR_PID: str(os.getpid()),
           SUPERVISOR_START: repr(process_start_time(os.getpid()))}
    with open(plan.run.log, "ab") as log:
        return subprocess.Popen(accelerate_command(plan), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def start_detached_supervisor(db, plan: Plan) -> int:
    """A supervisor in its own session, so the run outlives the terminal; returns its pid."""
    cmd = [sys.executable, "-m", "loratui.runs.supervise", plan.run_id]
    if plan.resume:
        cmd += ["--resume", plan.resume]
    with open(plan.run.path / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    record_supervisor(db, plan.run_id, proc.pid)
    return proc.pid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
