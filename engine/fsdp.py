"""A causal-lm LoRA whose model FSDP shards across processes: its full adapter and resumable checkpoint state,
gathered through Accelerate and torch.distributed.checkpoint.

Under FSDP each process holds a slice of every parameter. Gathering is a collective that every process must
enter: the main process gets the whole state (the others get {}) and writes it. Saving on the main process
alone, as the unsharded path does, would hang or write a shard.
"""

import torch.distributed as dist
from accelerate.utils import DistributedType

# torch.distributed.checkpoint and fsdp are imported where used: about a second of every training process's
# start, spent only by sharded runs.


def _gathered():
    """Whole tensors, on the main process's CPU (the others get nothing)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def sharded(accelerator) -> bool:
    """Whether the model's parameters are split across processes, so saving must run on every process."""
    return accelerator.distributed_type == DistributedType.FSDP


def allow_generate(model) -> None:
    """Let peft's generate() gather the sharded weights as forward() does (it bypasses the root's forward, whose
    weights would stay sharded); every process must then generate alongside the main one."""
    from torch.distributed.fsdp import register_fsdp_forward_method

    register_fsdp_forward_method(model, "generate")


def model_state_all_ranks(accelerator, model) -> dict:
    """The model's whole state dict (the frozen base too: peft picks the adapter's keys from it) on the main
    process, {} on the others. Every process calls it."""
    state = accelerator.get_state_dict(model)
    return state if accelerator.is_main_process else {}


def lora_state_all_ranks(task) -> dict:
    """task.lora_state() gathered from every process's shards: the main process gets it, the others {}."""
    state = model_state_all_ranks(task.accelerator, task.prepared)
    return task.lora_state(state) if state else {}


def optimizer_state_all_ranks(task, optimizer) -> dict:
    """The optimizer's whole state, its tensors keyed by parameter name (not by position as optimizer.state_dict()
    keys them), on the main process; {} on the others."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    state = get_optimizer_state_dict(task.prepared, _inner(optimizer), options=_gathered())
    return state if task.accelerator.is_main_process else {}


def load_optimizer_state_all_ranks(task, optimizer, state: dict) -> None:
    """Set what optimizer_state_all_ranks gave: the main process passes it, the others may pass {} (rank 0's
    tensors are broadcast and each process keeps its slice). Every process calls it, before the first backward:
    torch shapes a fresh optimizer's state by one zero step, which it skips once gradients exist."""
    everywhere = dist.is_initialized() and dist.get_world_size() > 1
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=everywhere)
    set_optimizer_state_dict(task.prepared, _inner(optimizer), state, options=options)


def _inner(optimizer):
    # accelerate's wrapper may skip a step while gradients accumulate; torch initialises the state with one.
    return getattr(optimizer, "optimizer", optimizer)
