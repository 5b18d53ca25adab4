"""Rules of thumb for what a run costs before it starts, shared by the tasks' estimate.py modules, and the count for
tasks that train one transformers model through peft. Parameters are counted on a model built from its config
under accelerate's init_empty_weights, so no weights are read or allocated (init_empty_weights patches torch for
the whole process: the dashboard asks a worker process, never itself)."""

import json
from pathlib import Path

# Bytes per trainable parameter: fp32 weight + fp32 grad + AdamW's two moments (8-bit AdamW: one byte each).
TRAIN_STATE_BYTES = {False: 4 + 4 + 8, True: 4 + 4 + 2}
CHECKPOINTING_SHARE = 0.2  # of the activations gradient checkpointing keeps, about
# Activation bytes a transformer layer keeps per token for backward, in 16-bit: ~34 x hidden, plus the attention
# scores (~5 x heads x tokens); Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models".
PER_TOKEN_HIDDEN, PER_TOKEN_HEADS = 34, 5


def weight_bytes(train) -> int:
    return 2 if train.mixed_precision in ("fp16", "bf16") else 4


def numel(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_peft_model(folder: Path, spec, auto_class: str, **config_overrides) -> dict:
    """{"trainable": LoRA and head parameters, "base": {"model": parameters}, "config": the model's config} for a
    transformers model loaded by `auto_class` with LoRA from [lora] and its head trained in full."""
    import transformers
    from accelerate import init_empty_weights
    from peft import get_peft_model

    from engine.lora_config import peft_config
    from engine.tasks.peft_model import head_modules

    config = transformers.AutoConfig.from_pretrained(folder, **config_overrides)
    with init_empty_weights():
        model = getattr(transformers, auto_class).from_config(config)
        base = numel(model)
        heads = head_modules(model) if auto_class != "AutoModelForCausalLM" else []
        lora = get_peft_model(model, peft_config(spec.lora, modules_to_save=heads))
        trainable = numel(lora, trainable_only=True)
    return {"trainable": trainable, "base": {"model": base}, "config": config.to_dict()}


def transformer_memory(spec, counts: dict, tokens: int) -> int:
    """Frozen weights in the compute precision + training state + every layer's activations for `tokens` tokens a
    sample (rule of thumb)."""
    t, config = spec.train, counts["config"]
    hidden = config.get("hidden_size") or max(config.get("hidden_sizes") or [768])
    layers = config.get("num_hidden_layers") or sum(config.get("depths") or [12])
    heads = config.get("num_attention_heads")
    heads = max(heads) if isinstance(heads, list) else heads or 12
    per_layer = tokens * (PER_TOKEN_HIDDEN * hidden + PER_TOKEN_HEADS * heads * tokens)
    activations = t.batch_size * layers * per_layer * weight_bytes(t) / 2
    if t.gradient_checkpointing:
        activations *= CHECKPOINTING_SHARE
    weights = sum(counts["base"].values()) * weight_bytes(t)
    return int(weights + counts["trainable"] * TRAIN_STATE_BYTES[t.use_8bit_adam] + activations)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
