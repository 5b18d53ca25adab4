"""What a text-to-image run costs: the UNet's and text encoders' parameters with LoRA on them, and memory by rule
of thumb (engine.tasks.cost)."""

import json
from pathlib import Path

from engine.tasks.cost import CHECKPOINTING_SHARE, TRAIN_STATE_BYTES, numel, weight_bytes

# Activation elements kept for backward per latent element (h x w x channels, summed over UNet levels), for
# the whole UNet. Calibrated so SD 1.5 at 512 px, batch 1, fp16 comes to about 7 GB, as users report; only
# a rough guide.
UNET_ACTIVATION_FACTOR = 1000
CONFIG_FILES = ["model_index.json", "*/config.json"]


def configs_complete(folder: Path) -> bool:
    """Browse may have cached only model_index.json and the UNet's config: is every config counted here present?"""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    parts = ["unet", "vae"] + [n for n in ("text_encoder", "text_encoder_2") if (index.get(n) or [None, None])[1]]
    return all((folder / part / "config.json").is_file() for part in parts)


def count_parameters(folder: Path, spec) -> dict:
    """{"trainable": LoRA parameters, "base": {component: parameters}, "unet": its config, "vae_scale": int}."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from engine.lora_config import peft_config

    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    base, trainable = {}, 0
    lora = spec.lora
    with init_empty_weights():
        unet_config = UNet2DConditionModel.load_config(folder / "unet")
        unet = UNet2DConditionModel.from_config(unet_config)
        base["unet"] = numel(unet)
        unet.add_adapter(peft_config(lora))
        trainable += _lora_numel(unet)
        vae_config = AutoencoderKL.load_config(folder / "vae")
        base["vae"] = numel(AutoencoderKL.from_config(vae_config))
        for name in ("text_encoder", "text_encoder_2"):
            if (index.get(name) or [None, None])[1] and (folder / name / "config.json").is_file():
                encoder = _text_encoder(folder / name, index[name][1])
                base[name] = numel(encoder)
                if lora.train_text_encoder:
                    encoder.add_adapter(peft_config(lora, target_modules=lora.text_encoder_target_modules))
                    trainable += _lora_numel(encoder)
    vae_scale = 2 ** (len(vae_config.get("block_out_channels", [0])) - 1)
    return {"trainable": trainable, "base": base, "unet": dict(unet_config), "vae_scale": vae_scale}


def memory_bytes(spec, counts: dict) -> int:
    """Frozen weights in the compute precision + LoRA training state + UNet activations (rule of thumb)."""
    t = spec.train
    weights = sum(counts["base"].values()) * weight_bytes(t)
    state_bytes = counts["trainable"] * TRAIN_STATE_BYTES[t.use_8bit_adam]
    unet = counts["unet"]
    latent = t.resolution // counts["vae_scale"]
    channels = unet.get("block_out_channels") or [320]
    per_sample = sum((latent // 2**level) ** 2 * width for level, width in enumerate(channels))
    activations = t.batch_size * per_sample * UNET_ACTIVATION_FACTOR * weight_bytes(t)
    if t.gradient_checkpointing:
        activations *= CHECKPOINTING_SHARE
    return int(weights + state_bytes + activations)


def _text_encoder(folder: Path, class_name: str):
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    return getattr(transformers, class_name)(config)


def _lora_numel(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
