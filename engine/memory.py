"""Memory readings for step events, activation checkpointing turned on, and what to try when CUDA runs out of
memory."""

import psutil
import torch


def snapshot(accelerator) -> dict:
    """Per-device CUDA memory (gathered from every process), or this process's RSS on CPU.

    Every process must call it at the same step: on CUDA it gathers."""
    device = accelerator.device
    if device.type != "cuda":
        return {"kind": "rss", "rss": psutil.Process().memory_info().rss}
    mine = torch.tensor([[device.index or 0, torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device),
                          torch.cuda.max_memory_allocated(device)]], dtype=torch.float64, device=device)
    rows = accelerator.gather(mine).tolist() if accelerator.num_processes > 1 else mine.tolist()
    keys = ("index", "allocated", "reserved", "peak")
    return {"kind": "cuda", "devices": [dict(zip(keys, map(int, row), strict=True)) for row in rows]}


def enable_activation_checkpointing(model) -> None:
    """Activation checkpointing on a transformers model, non-reentrant (the frozen inputs need no gradient for the
    LoRA weights inside to get theirs), under its current name: the old gradient_checkpointing_enable warns
    FutureWarning into every run's log. Transformers before that name have only the old one."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def oom_hints(spec) -> str:
    """Concrete changes to the spec, most effective first, given what it already sets."""
    train = spec.train
    hints = []
    if train.batch_size > 1:
        hints.append(f"lower train.batch_size (now {train.batch_size}) and raise gradient_accumulation_steps to "
                     "keep the effective batch")
    if not train.gradient_checkpointing:
        hints.append("set train.gradient_checkpointing = true")
    if train.mixed_precision == "no":
        hints.append('set train.mixed_precision = "bf16" (or "fp16" on older GPUs)')
    if train.resolution > 256:
        hints.append(f"lower train.resolution (now {train.resolution})")
    if not train.use_8bit_adam:
        hints.append("set train.use_8bit_adam = true (needs bitsandbytes)")
    if spec.lora.train_text_encoder:
        hints.append("set lora.train_text_encoder = false")
    return "; ".join(hints) or "use a GPU with more memory"
