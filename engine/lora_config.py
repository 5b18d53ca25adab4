"""The spec's [lora] as peft's LoraConfig: one place, so adapter_config.json holds exactly what the spec asked."""

_INIT = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora", "loftq": "loftq"}


def peft_config(lora, *, target_modules=None, modules_to_save: list[str] = (), task_type: str | None = None):
    """A LoraConfig of the [lora] section; `target_modules` (e.g. a text encoder's) replaces the section's,
    `modules_to_save` (e.g. a task's new head) joins the section's own."""
    from peft import LoftQConfig, LoraConfig

    saved = list(dict.fromkeys([*lora.modules_to_save, *modules_to_save]))
    return LoraConfig(
        r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules if target_modules is None else target_modules,
        bias=lora.bias, use_rslora=lora.use_rslora, use_dora=lora.use_dora,
        modules_to_save=saved or None, layers_to_transform=lora.layers_to_transform or None,
        layers_pattern=lora.layers_pattern or None, rank_pattern=dict(lora.rank_pattern),
        alpha_pattern=dict(lora.alpha_pattern), init_lora_weights=_INIT[lora.init],
        loftq_config=LoftQConfig(loftq_bits=lora.loftq.bits, loftq_iter=lora.loftq.iter) if lora.init == "loftq" else {},
        task_type=task_type,
    )
