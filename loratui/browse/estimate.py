"""What a run would cost, before it starts: optimizer steps and epochs, trainable parameters, rough memory.

Parameters are counted on the model built from its config files under accelerate's init_empty_weights, so no
weights are read or allocated. init_empty_weights patches torch.nn.Module for the whole process, and the
imports are heavy: the dashboard asks its quick worker process (loratui.browse.questions), never itself.
"""

import math
from pathlib import Path

from loratui.browse import local
from loratui.browse.network import hub_errors, quiet, state
from loratui.library.requests import Estimate

CONFIG_FILES = ["model_index.json", "config.json", "*/config.json"]
# Activation elements kept for backward per latent element (h x w x channels, summed over UNet levels), for
# the whole UNet. Calibrated so SD 1.5 at 512 px, batch 1, fp16 comes to about 7 GB, as users report; only
# a rough guide. Gradient checkpointing keeps about a fifth.
UNET_ACTIVATION_FACTOR = 1000
CHECKPOINTING_SHARE = 0.2
# Bytes per trainable parameter: fp32 weight + fp32 grad + AdamW's two moments (8-bit AdamW: one byte each).
TRAIN_STATE_BYTES = {False: 4 + 4 + 8, True: 4 + 4 + 2}


def split_rows(split: str, counts: dict[str, int | None]) -> int | None:
    """Rows a split expression such as train, train[:500] or train[10%:]+test selects; None when unknown."""
    from datasets import ReadInstruction

    try:
        known = {name: int(n) for name, n in counts.items() if n is not None}
        parts = ReadInstruction.from_spec(split).to_absolute(known)
    except (ValueError, KeyError):
        return None
    return sum(p.to - p.from_ for p in parts)


def schedule(
    rows: int, batch_size: int, accumulation: int, processes: int, max_steps: int, num_epochs: int
) -> tuple[int, int, int]:
    """(optimizer steps, epochs, steps per epoch) the way the training loop counts them: each process
    gets ceil(rows / processes) rows, in batches (the last may be short), `accumulation` batches a step."""
    batches = math.ceil(math.ceil(rows / processes) / batch_size)
    per_epoch = max(1, math.ceil(batches / accumulation))
    if max_steps:
        return max_steps, math.ceil(max_steps / per_epoch), per_epoch
    return num_epochs * per_epoch, num_epochs, per_epoch


def estimate(spec, split_counts: dict[str, int | None] | None) -> Estimate:
    """The whole estimate for a valid engine.spec.Spec; `split_counts` are the dataset's rows per split."""
    result = Estimate()
    processes = spec.launch.num_processes or 1
    if not spec.launch.num_processes:
        result.notes.append("assuming 1 process (num_processes is 0: the accelerate config decides)")
    rows = split_rows(spec.data.split, split_counts) if split_counts else None
    if rows is not None and spec.data.max_samples:
        rows = min(rows, spec.data.max_samples)
    result.rows = rows
    t = spec.train
    if rows:
        result.steps, result.epochs, result.steps_per_epoch = schedule(
            rows, t.batch_size, t.gradient_accumulation_steps, processes, t.max_steps, t.num_epochs
        )
    else:
        result.steps = t.max_steps or None
        result.notes.append("row count unknown: epochs cannot be worked out yet")
    folder = config_folder(spec.model.pretrained, spec.model.revision)
    counts = count_parameters(folder, spec)
    result.trainable_params = counts["trainable"]
    result.base_params = sum(counts["base"].values())
    result.memory_bytes = memory_bytes(spec, counts)
    return result


def config_folder(ref: str, revision: str = "main") -> Path:
    """A folder holding the model's config files: a built-in, a local folder, the HF cache, or the Hub
    (config files only, a few KB)."""
    from engine import builtin

    if builtin.is_builtin(ref):
        return builtin.path(ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    cached = local.cached_snapshot(ref)
    if cached is not None and _configs_complete(cached):
        return cached
    from huggingface_hub import snapshot_download

    with quiet(), hub_errors(ref):
        return Path(
            snapshot_download(ref, revision=revision, allow_patterns=CONFIG_FILES, endpoint=state().endpoint)
        )


def _configs_complete(folder: Path) -> bool:
    """Browse may have cached only model_index.json and the UNet's config: is every config counted here present?"""
    import json

    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    parts = ["unet", "vae"] + [n for n in ("text_encoder", "text_encoder_2") if (index.get(n) or [None, None])[1]]
    return all((folder / part / "config.json").is_file() for part in parts)


def count_parameters(folder: Path, spec) -> dict:
    """{"trainable": LoRA parameters, "base": {component: parameters}, "unet": its config, "vae_scale": int}."""
    import json

    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from engine.lora_config import peft_config

    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    base, trainable = {}, 0
    lora = spec.lora
    with init_empty_weights():
        unet_config = UNet2DConditionModel.load_config(folder / "unet")
        unet = UNet2DConditionModel.from_config(unet_config)
        base["unet"] = _numel(unet)
        unet.add_adapter(peft_config(lora))
        trainable += _numel(unet, lora_only=True)
        vae_config = AutoencoderKL.load_config(folder / "vae")
        base["vae"] = _numel(AutoencoderKL.from_config(vae_config))
        for name in ("text_encoder", "text_encoder_2"):
            if (index.get(name) or [None, None])[1] and (folder / name / "config.json").is_file():
                encoder = _text_encoder(folder / name, index[name][1])
                base[name] = _numel(encoder)
                if lora.train_text_encoder:
                    encoder.add_adapter(peft_config(lora, target_modules=lora.text_encoder_target_modules))
                    trainable += _numel(encoder, lora_only=True)
    vae_scale = 2 ** (len(vae_config.get("block_out_channels", [0])) - 1)
    return {"trainable": trainable, "base": base, "unet": dict(unet_config), "vae_scale": vae_scale}


def memory_bytes(spec, counts: dict) -> int:
    """Frozen weights in the compute precision + LoRA training state + UNet activations (rule of thumb)."""
    t = spec.train
    weight_bytes = 2 if t.mixed_precision in ("fp16", "bf16") else 4
    weights = sum(counts["base"].values()) * weight_bytes
    state_bytes = counts["trainable"] * TRAIN_STATE_BYTES[t.use_8bit_adam]
    unet = counts["unet"]
    latent = t.resolution // counts["vae_scale"]
    channels = unet.get("block_out_channels") or [320]
    per_sample = sum((latent // 2**level) ** 2 * width for level, width in enumerate(channels))
    activations = t.batch_size * per_sample * UNET_ACTIVATION_FACTOR * weight_bytes
    if t.gradient_checkpointing:
        activations *= CHECKPOINTING_SHARE
    return int(weights + state_bytes + activations)


def _text_encoder(folder: Path, class_name: str):
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    return getattr(transformers, class_name)(config)


def _numel(model, lora_only: bool = False) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not lora_only or "lora_" in name)
