"""Taking part in a run on several machines from a machine other than the main one (`loratui run --spec S
--machine-rank K`, K > 0).

The main machine (rank 0) owns the run: its folder, events, checkpoints and library.db. Here, the training
processes only compute: they work in a scratch folder of their own under LORATUI_HOME/nodes (the spec, the
rows preflight skips, which must match the main machine's, a log), are given the checkpoint to resume from
by the main process, and never write events, checkpoints, adapters or the library.
"""

import subprocess
import sys

from engine import preflight
from engine.atomic import write_atomic
from engine.errors import LoratuiError
from engine.home import home
from engine.launch_check import accelerate_config
from engine.rundir import RunDir
from engine.spec import Spec
from loratui.runs.exits import killing_signal, log_size, signal_words
from loratui.runs.launch import Plan, accelerate_command, launch_env


class NodeFailed(LoratuiError):
    exit_code = 1


def node_folder(spec: Spec, machine_rank: int) -> RunDir:
    return RunDir(home() / "nodes" / f"{spec.name}-machine{machine_rank}")


def join(spec: Spec, machine_rank: int) -> int:
    """Train this machine's share of the run `spec` describes, in the foreground; the exit code."""
    launch = spec.launch
    config = accelerate_config(launch)[1]
    machines = launch.num_machines or int(config.get("num_machines") or 1)
    if machines < 2:
        raise LoratuiError("--machine-rank: the spec's launch.num_machines (or the accelerate config's) is not "
                           "above 1", hint="set launch.num_machines, main_process_ip and main_process_port for "
                                           "several machines")
    if machine_rank >= machines:
        raise LoratuiError(f"--machine-rank {machine_rank} is not below launch.num_machines ({machines})",
                           hint=f"machines are numbered 0 to {machines - 1}; 0 is the main one")
    address = f"{launch.main_process_ip or config.get('main_process_ip')}:" \
              f"{launch.main_process_port or config.get('main_process_port')}"
    run = node_folder(spec, machine_rank)
    report = preflight.check(spec, run.path)
    report.raise_if_failed()
    run.path.mkdir(parents=True, exist_ok=True)
    write_atomic(run.spec, spec.to_toml())
    run.write_preflight(report.skip_rows, report.notes)
    plan = Plan(spec, run, resume="latest" if spec.train.resume_from_checkpoint else None)
    print(f"machine {machine_rank} of {machines}: joining the run at {address} (log: {run.log})", file=sys.stderr,
          flush=True)
    start = log_size(run.log)
    with open(run.log, "ab") as log:
        code = subprocess.call(accelerate_command(plan, machine_rank), stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, env=launch_env(plan))
    run.clear_pids()
    if code:
        killed = killing_signal(code, run.log, start)
        ended = f"a training process was killed by {signal_words(killed)}" if killed else \
            f"the training processes exited with code {code}"
        raise NodeFailed(f"machine {machine_rank}: {ended}",
                         hint=f"see {run.log}, and the run on the main machine ({address})")
    print(f"machine {machine_rank}: done", file=sys.stderr)
    return 0
