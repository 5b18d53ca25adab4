"""The distributed state a training process gets, made from [launch] and checked against what was launched.

accelerate does not refuse a launch it cannot honour: `--use_fsdp --num_processes 2` on a machine without
CUDA starts two independent processes, each believing it is the main one, and both would write the run
folder. Each process therefore compares what it was launched as (the environment accelerate's launcher
sets) with the state it got, and the run fails at once, in one line, when they differ.
"""

import os
from datetime import timedelta

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs

from engine.errors import LoratuiError
from engine.launch_check import EXPECT_PROCESSES


class LaunchMismatch(LoratuiError):
    pass


def make_accelerator(spec, project_dir: str) -> Accelerator:
    """The run's Accelerator; a process that waits longer than launch.timeout_s for the others fails."""
    # Several processes without CUDA: accelerate's gloo data parallelism, which it enables only when told "cpu".
    on_cpu = not torch.cuda.is_available() and launched_processes() > 1
    try:
        return Accelerator(cpu=on_cpu, gradient_accumulation_steps=spec.train.gradient_accumulation_steps,
                           mixed_precision=spec.train.mixed_precision,
                           log_with=None if spec.output.report_to == "none" else spec.output.report_to,
                           project_dir=project_dir,
                           kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=spec.launch.timeout_s))])
    except ValueError as exc:
        raise LoratuiError(f"train.mixed_precision: {exc}".splitlines()[0],
                           hint="choose a precision this machine supports (\"no\" always works)") from None


def launched_processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as the launcher numbered it, whatever state accelerate then gave it."""
    return int(os.environ.get("RANK", "0"))


def launched_kind() -> str:
    if _flag("ACCELERATE_USE_FSDP"):
        return "fsdp"
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        return "deepspeed"
    return "ddp" if launched_processes() > 1 else "none"


def kind_of(distributed_type) -> str:
    """loratui's name for one of accelerate's distributed types."""
    if distributed_type == DistributedType.FSDP:
        return "fsdp"
    if distributed_type == DistributedType.DEEPSPEED:
        return "deepspeed"
    return "none" if distributed_type == DistributedType.NO else "ddp"


def check_launch(accelerator) -> None:
    """Raise LaunchMismatch when this process's state is not what was launched."""
    asked_processes = int(os.environ.get(EXPECT_PROCESSES) or launched_processes())
    kind = launched_kind()
    asked = (asked_processes, "ddp" if kind == "none" and asked_processes > 1 else kind)
    got = (accelerator.num_processes, kind_of(accelerator.distributed_type))
    if asked == got:
        return
    why = ""
    if asked[1] == "fsdp" and not torch.cuda.is_available():
        why = ": accelerate shards with FSDP only on GPUs, and this machine has no CUDA"
    raise LaunchMismatch(f"launched as {_describe(*asked)}, but this process got {_describe(*got)} "
                         f"({accelerator.distributed_type}){why}",
                         hint="check launch.distributed and launch.num_processes against the machine (and your "
                              "accelerate config); nothing was trained")


def lost_peer(exc: BaseException) -> bool:
    """A collective that failed because another process died or stopped answering within the timeout."""
    if isinstance(exc, torch.distributed.DistError):
        return True
    text = str(exc).lower()  # gloo and NCCL name themselves in their errors' first words
    return isinstance(exc, RuntimeError) and any(
        sign in text for sign in ("gloo", "nccl", "connection closed by peer", "connection reset by peer"))


def _describe(processes: int, kind: str) -> str:
    return f"{processes} process{'es' if processes != 1 else ''} with {kind if kind != 'none' else 'no distribution'}"


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("true", "1", "yes")
