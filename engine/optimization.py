"""The optimizer and its learning-rate schedule, as [train] describes them."""

import torch
from diffusers.optimization import get_scheduler

from engine.errors import LoratuiError


def make_optimizer(params, lr: float, t):
    if t.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise LoratuiError("train.use_8bit_adam needs bitsandbytes, which is not installed",
                               hint="pip install bitsandbytes, or set train.use_8bit_adam = false") from None
        return bnb.optim.AdamW8bit(params, lr=lr, betas=(t.adam_beta1, t.adam_beta2),
                                   weight_decay=t.adam_weight_decay, eps=t.adam_epsilon)
    # One fused kernel for all LoRA tensors instead of a dozen small ops each (the for-each loop on CPU).
    fused = all(p.device.type in ("cuda", "cpu") for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=(t.adam_beta1, t.adam_beta2), weight_decay=t.adam_weight_decay,
                             eps=t.adam_epsilon, fused=fused or None)


def schedule(t, optimizer, total: int, restored: dict | None):
    """The learning-rate schedule over `total` optimizer steps (never steps times processes, so a checkpoint
    resumes with any process count), at the restored schedule's step when resuming."""
    scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.lr_warmup_steps, num_training_steps=total)
    if restored is not None:
        scheduler.load_state_dict(restored)
        _follow_schedule(optimizer, scheduler)
    return scheduler


def _follow_schedule(optimizer, scheduler) -> None:
    """Set the restored step's learning rates from this run's schedule. The checkpoint holds those of the
    schedule it was saved under, which ended elsewhere if max_steps has since been raised (a finished run
    trained on) or the process count changed the steps an epoch takes: the rest of the run then follows the
    schedule stretched to the new total."""
    # diffusers' schedules are LambdaLR; lambdas are never saved, so these are the new total's
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)
