"""Starting a run: validate, preflight, make the run folder and its runs row, start `accelerate launch`.

Training always runs in its own processes, started through accelerate (so the user's accelerate config
applies), in a session of their own: a Ctrl-C in the terminal reaches only the supervisor, which asks
each training process to stop exactly once, so none is killed half-way through a write.
"""

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine import preflight
from engine.errors import LoratuiError
from engine.launch_check import EXPECT_PROCESSES, default_accelerate_config
from engine.liveness import is_alive, process_start_time
from engine.reach import offline_env
from engine.rundir import RunDir, claim_run_dir, planned_run_dir
from engine.spec import Spec, load_spec, parse_spec
from engine.stopping import SUPERVISOR_PID, SUPERVISOR_START
from loratui.db import runs as table
from loratui.db.txn import immediate


@dataclass
class Plan:
    spec: Spec
    run: RunDir  # for a new run, where it is planned to go until prepare() claims its folder
    resume: str | None = None  # "latest", a checkpoint folder, or None for a fresh start
    run_id: str | None = None  # None for a new run until prepare() assigns it
    skip_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def begin(db, spec_path: str | None = None, *, spec: Spec | None = None, resume_id: str | None = None,
          max_steps: int | None = None, num_processes: int | None = None, tell=None) -> Plan:
    """The one way a run starts, for the CLI, the dashboard and the queue: checked (plan_run), what preflight
    noted told (`tell`, one note at a time), then recorded and its folder made (prepare). The caller supervises
    the returned plan here (supervise) or in a session of its own (start_detached_supervisor)."""
    if resume_id:
        from loratui.runs.ingest import catch_up

        catch_up(db)  # a run whose supervisor died counts as crashed, with every step it recorded
    plan = plan_run(db, spec_path, resume_id=resume_id, spec=spec, max_steps=max_steps, num_processes=num_processes)
    for note in plan.notes if tell else ():
        tell(note)
    prepare(db, plan)
    return plan


def plan_run(db, spec_path: str | None = None, *, resume_id: str | None = None, spec: Spec | None = None,
             max_steps: int | None = None, num_processes: int | None = None) -> Plan:
    """Everything checked, nothing created yet: a bad spec or dataset fails here, in seconds. A resumed run may
    train on to `max_steps`, and with another process count (its checkpoint resumes with any)."""
    if resume_id:
        row = check_resumable(db, resume_id, max_steps)
        run = RunDir(row["dir"])
        if not run.spec.is_file():
            raise LoratuiError(f"run '{resume_id}' has no spec.toml in {run.path}", hint="the run folder was removed")
        spec = load_spec(run.spec)
        if max_steps is not None:
            spec = _changed(spec, "train", max_steps=max_steps, num_epochs=0)
        if num_processes is not None:
            spec = _changed(spec, "launch", num_processes=num_processes)
        plan = Plan(spec, run, "latest", resume_id)
    else:
        spec = spec or preflight.load_checked(spec_path)
        plan = _plan_from_spec(db, spec)
    report = preflight.check(plan.spec, plan.run.path)
    report.raise_if_failed()
    plan.skip_rows, plan.notes = report.skip_rows, report.notes
    return plan


def check_resumable(db, run_id: str, max_steps: int | None = None) -> dict:
    """The run's row, if `loratui run --resume` may continue it (to `max_steps`); cheap, no torch."""
    row = table.get(db, run_id)
    if max_steps is not None and max_steps <= row["step"]:
        raise LoratuiError(f"--max-steps {max_steps} is not above step {row['step']}, which run '{run_id}' reached",
                           hint=f"pass a --max-steps above {row['step']}")
    _refuse_to_continue(row, max_steps, f"`loratui run --resume {run_id} --max-steps N` trains it on to step N "
                                        f"(N above {row['step']})")
    return row


def _refuse_to_continue(row: dict, max_steps: int | None, finished_hint: str) -> None:
    """A running run is not started twice. A finished run trains on only to a larger max_steps, from its last
    checkpoint: resuming it as it is would redo nothing but register its adapter again."""
    if row["status"] == "running" and is_alive(row["pid"], row["pid_start"]):
        raise LoratuiError(f"run '{row['id']}' is still running", hint=f"`loratui runs stop {row['id']}` first")
    if row["status"] != "finished":
        return
    if not max_steps or max_steps <= row["step"]:
        raise LoratuiError(f"run '{row['id']}' finished at step {row['step']}: there is nothing to resume",
                           hint=finished_hint)
    if RunDir(row["dir"]).latest_checkpoint() is None:
        raise LoratuiError(f"run '{row['id']}' has no checkpoint to train on from",
                           hint="it ran with train.checkpointing_steps = 0; start a new run with a larger "
                                "train.max_steps")


def _changed(spec: Spec, section: str, **values) -> Spec:
    data = spec.model_dump()
    data[section].update(values)
    return parse_spec(data)


def _plan_from_spec(db, spec: Spec) -> Plan:
    """A new run, or, to resume, the folder (and id) of the run it continues."""
    value = spec.train.resume_from_checkpoint
    if not value:
        return Plan(spec, planned_run_dir(spec.name, spec.output.dir))
    if value == "latest":
        folder = Path(spec.output.dir).expanduser().resolve() if spec.output.dir else None
        if folder is None:
            previous = table.latest_named(db, spec.name)
            folder = Path(previous["dir"]) if previous else None
        if folder is None or not (folder / "spec.toml").is_file():
            return Plan(spec, planned_run_dir(spec.name, spec.output.dir))
    else:
        checkpoint = Path(value).expanduser().resolve()
        folder = checkpoint.parent.parent
        if not (folder / "spec.toml").is_file():
            raise LoratuiError(f"train.resume_from_checkpoint: {checkpoint} is not inside a loratui run folder",
                               hint="name a runs/<id>/checkpoints/checkpoint-NNNNNN folder, or use \"latest\"")
        value = str(checkpoint)
    run = RunDir(folder)
    if row := table.find(db, run.run_id):
        _refuse_to_continue(row, spec.train.max_steps, f"set train.max_steps above {row['step']} to train it on, "
                                                       "or remove train.resume_from_checkpoint to start a new run")
    return Plan(spec, run, value, run.run_id)


def prepare(db, plan: Plan) -> None:
    """Record the run as running: a new run gets its id and claims its folder in one transaction, so two
    runs never share either; a resumed one takes its folder over again."""
    values = {"name": plan.spec.name, "task": plan.spec.task, "spec": plan.spec.to_toml(),
              "spec_hash": plan.spec.hash(), "base_model": plan.spec.model.pretrained, "status": "running",
              "ended": None, "error": None, "pid": os.getpid(), "pid_start": process_start_time(os.getpid())}
    with immediate(db):
        if plan.run_id is None:
            plan.run = claim_run_dir(plan.spec.name, plan.spec.output.dir, lambda candidate: table.exists(db, candidate))
            plan.run_id = plan.run.run_id
            try:
                table.insert(db, plan.run_id, {**values, "dir": str(plan.run.path)})
            except BaseException:
                plan.run.release()
                raise
        elif not table.update(db, plan.run_id, values):  # a folder library.db does not know (the library was replaced)
            table.insert(db, plan.run_id, {**values, "dir": str(plan.run.path)})
    plan.run.create(plan.spec.to_toml())
    plan.run.write_preflight(plan.skip_rows, plan.notes)
    _log_notes(plan)
    plan.run.clear_pids()


def _log_notes(plan: Plan) -> None:
    """What preflight noted (a default that followed the model, rows to skip...), in run.log before the training's
    own output, so the log says what this launch took."""
    if plan.notes:
        with open(plan.run.log, "a", encoding="utf-8") as log:
            log.writelines(f"note: {note}\n" for note in plan.notes)


def record_supervisor(db, run_id: str, pid: int) -> None:
    with db.conn:
        table.update(db, run_id, {"pid": pid, "pid_start": process_start_time(pid)})


def accelerate_command(plan: Plan, machine_rank: int | None = None) -> list[str]:
    """The `accelerate launch` line; `machine_rank` for a machine other than the spec's own."""
    launch = plan.spec.launch
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file:
        cmd += ["--config_file", launch.config_file]
    configured = bool(launch.config_file) or default_accelerate_config().is_file()
    if configured:  # the config's values stand unless the spec sets them
        cmd += ["--num_processes", str(launch.num_processes)] if launch.num_processes else []
        cmd += ["--num_machines", str(launch.num_machines)] if launch.num_machines else []
    else:
        # accelerate's own defaults, passed so it does not warn that it used them
        cmd += ["--num_processes", str(launch.num_processes or 1), "--num_machines", str(launch.num_machines or 1),
                "--dynamo_backend", "no"]
    several = launch.num_processes > 1 or launch.num_machines > 1
    if launch.distributed == "fsdp":
        cmd += ["--use_fsdp", "--fsdp_version", "2"]
    elif launch.distributed == "deepspeed":
        cmd += ["--use_deepspeed"]
    elif launch.multi_gpu or launch.distributed == "ddp" or (several and not configured):
        cmd += ["--multi_gpu"]  # several processes are data parallel unless a config says otherwise
    if launch.num_machines > 1:
        rank = launch.machine_rank if machine_rank is None else machine_rank
        cmd += ["--machine_rank", str(rank), "--main_process_ip", launch.main_process_ip,
                "--main_process_port", str(launch.main_process_port)]
    elif machine_rank is not None:  # machines as the accelerate config sets them up, its address and port
        cmd += ["--machine_rank", str(machine_rank)]
    elif several or launch.multi_gpu:
        # two runs on one box must not share a port
        cmd += ["--main_process_port", str(launch.main_process_port or _free_port())]
    if launch.gpu_ids:
        cmd += ["--gpu_ids", launch.gpu_ids]
    cmd += ["--mixed_precision", plan.spec.train.mixed_precision, "-m", "engine.train", str(plan.run.path)]
    if plan.resume:
        cmd += ["--resume", plan.resume]
    return cmd


def launch_env(plan: Plan) -> dict[str, str]:
    """The training processes' environment: offline if the Hub is, and what each must check it got."""
    env = {**os.environ, **offline_env(), "PYTHONUNBUFFERED": "1"}
    if plan.spec.launch.num_processes:
        env[EXPECT_PROCESSES] = str(plan.spec.launch.num_processes)
    return env


def start_training(plan: Plan) -> subprocess.Popen:
    env = {**launch_env(plan), SUPERVISOR_PID: str(os.getpid()), SUPERVISOR_START: repr(process_start_time(os.getpid()))}
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
                                env={**os.environ, **offline_env()}, start_new_session=True)
    record_supervisor(db, plan.run_id, proc.pid)
    return proc.pid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
