"""Test data for the adapter-operation tests: tiny built-in bases and untrained LoRAs with random weights.

LoRA B matrices start at zero in training; here they are filled with seeded noise so every adapter changes
its base's output, and each adapter differs from the others.
"""

import copy
from pathlib import Path

import pytest

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def builtin_model(name: str, home: Path) -> Path:
    """The built-in's folder, built once into the session-wide `home`."""
    import engine.builtin as builtin

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        return builtin.path(name)


def _randomise_b(model, seed: int, scale: float) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


def sd_lora(
    base: Path,
    out: Path,
    *,
    rank: int,
    seed: int,
    alpha: int | None = None,
    text_encoder: bool = True,
    scale: float = 0.1,
) -> Path:
    """A diffusers-format LoRA file for the UNet (and text encoder) of the SD pipeline at `base`."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    alpha = alpha or rank
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=UNET_TARGETS))
    _randomise_b(unet, seed, scale)
    meta = {"r": rank, "lora_alpha": alpha, "target_modules": UNET_TARGETS}
    kwargs = {"unet_lora_layers": get_peft_model_state_dict(unet), "unet_lora_adapter_metadata": meta}
    if text_encoder:
        encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
        encoder.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=TEXT_TARGETS))
        _randomise_b(encoder, seed + 1000, scale)
        kwargs["text_encoder_lora_layers"] = get_peft_model_state_dict(encoder)
        kwargs["text_encoder_lora_adapter_metadata"] = {**meta, "target_modules": TEXT_TARGETS}
    StableDiffusionPipeline.save_lora_weights(out, **kwargs)
    return out / "pytorch_lora_weights.safetensors"


def ink_and_paper_home(builtin_home: Path, root: Path, *, ink_weight: float | None = None) -> Path:
    """A LORATUI_HOME under `root` whose library holds ink (rank 4) and paper (rank 8), tiny-sd LoRAs."""
    from loratui.db.library import open_db
    from loratui.library import adapters

    sd = builtin_model("tiny-sd", builtin_home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(root / "home"))
        db = open_db()
        for name, rank, seed in (("ink", 4, 1), ("paper", 8, 2)):
            adapters.register(db, sd_lora(sd, root / name, rank=rank, seed=seed), name=name, base_model=str(sd))
        if ink_weight is not None:
            adapters.edit(db, "ink", preferred_weight=ink_weight)
        db.conn.close()
    return root / "home"


def llm_lora(
    base: Path, out: Path, *, rank: int, seed: int, targets=("q_proj", "v_proj"), model=None
) -> Path:
    """A PEFT adapter folder for the causal LM at `base`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = copy.deepcopy(model) if model is not None else AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    _randomise_b(peft_model, seed, 0.3)
    peft_model.save_pretrained(out)
    return out
