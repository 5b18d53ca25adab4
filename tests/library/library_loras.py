"""LoRA files for the library tests, made from the tiny built-ins without training.

peft LoRA layers are attached to the built-in models, their B matrices filled with seeded noise, and saved the
way stock tools save them (diffusers' save_lora_weights, peft's save_pretrained). kohya files are written by a
key conversion of their own here, independent of loratui's exporter, so the exporter can be checked against it.
"""

import warnings
from pathlib import Path

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# tiny-sdxl has layers_per_block=2: the SGM/LDM names kohya uses for SDXL attention blocks.
SGM_BLOCKS = {
    "down_blocks.1.attentions.0.": "input_blocks.4.1.",
    "down_blocks.1.attentions.1.": "input_blocks.5.1.",
    "mid_block.attentions.0.": "middle_block.1.",
    "up_blocks.0.attentions.0.": "output_blocks.0.1.",
    "up_blocks.0.attentions.1.": "output_blocks.1.1.",
    "up_blocks.0.attentions.2.": "output_blocks.2.1.",
}


def _with_lora(model, targets, rank: int, alpha: float, seed: int):
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    with warnings.catch_warnings():  # peft looks for a config.json that a diffusers component does not have
        warnings.simplefilter("ignore", UserWarning)
        return get_peft_model_state_dict(model)


def sd_diffusers(base: Path, out: Path, *, rank: int = 4, seed: int = 0) -> Path:
    """What stock diffusers writes for an SD LoRA on the UNet and text encoder (no alpha recorded)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    StableDiffusionPipeline.save_lora_weights(
        out,
        unet_lora_layers=_with_lora(unet, UNET_TARGETS, rank, rank, seed),
        text_encoder_lora_layers=_with_lora(encoder, TEXT_TARGETS, rank, rank, seed + 1),
    )
    return out / "pytorch_lora_weights.safetensors"


def sdxl_diffusers(base: Path, out: Path, *, rank: int = 4, seed: int = 10) -> Path:
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    te1 = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    te2 = CLIPTextModelWithProjection.from_pretrained(base, subfolder="text_encoder_2")
    StableDiffusionXLPipeline.save_lora_weights(
        out,
        unet_lora_layers=_with_lora(unet, UNET_TARGETS, rank, rank, seed),
        text_encoder_lora_layers=_with_lora(te1, TEXT_TARGETS, rank, rank, seed + 1),
        text_encoder_2_lora_layers=_with_lora(te2, TEXT_TARGETS, rank, rank, seed + 2),
    )
    return out / "pytorch_lora_weights.safetensors"


def llm_peft(base: Path, out: Path, *, rank: int = 4, seed: int = 20) -> Path:
    """A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) for tiny-llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    model.save_pretrained(out)
    return out


def kohya_name(key: str, sdxl: bool, sgm: bool = False) -> str:
    """diffusers `unet.x.y.lora_A.weight` -> kohya `lora_unet_x_y.lora_down.weight`."""
    stem, _, kind = key.removesuffix(".weight").rpartition(".")
    component, _, module = stem.partition(".")
    if component == "unet":
        if sgm:
            for old, new in SGM_BLOCKS.items():
                module = module.replace(old, new)
        prefix = "lora_unet_"
    else:
        module = module if module.startswith("text_model.") else "text_model." + module
        prefix = {"text_encoder": "lora_te1_" if sdxl else "lora_te_", "text_encoder_2": "lora_te2_"}[component]
    suffix = {"lora_A": "lora_down.weight", "lora_B": "lora_up.weight"}[kind]
    return f"{prefix}{module.replace('.', '_')}.{suffix}"


def to_kohya(source: Path, dest: Path, *, alpha: float, sdxl: bool = False, sgm: bool = False,
             metadata: dict | None = None) -> Path:
    """A kohya/A1111 file with the same matrices, an `.alpha` per module, and `metadata` in the header."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {}
    for key, value in load_file(source).items():
        name = kohya_name(key, sdxl, sgm)
        tensors[name] = value
        tensors[name.split(".")[0] + ".alpha"] = torch.tensor(alpha, dtype=value.dtype)
    save_file(tensors, dest, metadata=metadata)
    return dest


KOHYA_METADATA = {
    "ss_network_module": "networks.lora",
    "ss_network_dim": "4",
    "ss_network_alpha": "2.0",
    "ss_base_model_version": "sd_v1",
    "ss_output_name": "paper-cut",
    "ss_sd_model_name": "runwayml/stable-diffusion-v1-5",
    "ss_tag_frequency": '{"shapes": {"paper": 12, "cut": 9}}',
    "modelspec.architecture": "stable-diffusion-v1/lora",
    "modelspec.title": "Paper Cut",
    "modelspec.trigger_phrase": "papercut, layered paper",
}
