"""Stable Diffusion XL: two text encoders, 2048-wide cross-attention, added time/text embeddings."""

from engine.tasks.registry import BY_KEYS, DECLARED, AdapterEvidence, Family, ModelConfigs
from engine.tasks.text_to_image.families import adapter_cross_dim, declared, pipeline

ORDER = 3
PIPELINE = "StableDiffusionXLPipeline"


def recognise(configs: ModelConfigs) -> str | None:
    return f"{PIPELINE} (sdxl)" if pipeline(configs) == PIPELINE else None


def adapter_match(evidence: AdapterEvidence) -> int:
    if declared(evidence, "stable-diffusion-xl", ("sdxl",)):
        return DECLARED
    components = {component for component, _, _ in evidence.modules}
    if "text_encoder_2" in components or any(name.startswith("add_embedding") for _, name, _ in evidence.modules):
        return BY_KEYS
    # kohya writes SGM block names only for SDXL
    if any(key.startswith(("lora_unet_input_blocks", "lora_unet_output_blocks")) for key in evidence.shapes):
        return BY_KEYS
    return BY_KEYS if adapter_cross_dim(evidence) == 2048 else 0


FAMILY = Family("sdxl", "Stable Diffusion XL", PIPELINE, recognise, adapter_match,
                targets=("to_k", "to_q", "to_v", "to_out.0"), blocks=True,
                text_encoders=("text_encoder", "text_encoder_2"),
                base_model="stabilityai/stable-diffusion-xl-base-1.0", resolution=1024,
                added_conditions=True, vae_float32=True)
