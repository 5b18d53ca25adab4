"""Stable Diffusion 1.x: a UNet with 768-wide cross-attention (CLIP ViT-L)."""

from engine.tasks.registry import BY_KEYS, DECLARED, AdapterEvidence, Family, ModelConfigs
from engine.tasks.text_to_image.families import adapter_cross_dim, cross_attention_dim, declared, pipeline

ORDER = 1
PIPELINE = "StableDiffusionPipeline"


def recognise(configs: ModelConfigs) -> str | None:
    if pipeline(configs) == PIPELINE and cross_attention_dim(configs) != 1024:
        return f"{PIPELINE} (sd1)"
    return None


def adapter_match(evidence: AdapterEvidence) -> int:
    if declared(evidence, "stable-diffusion-v1", ("sd_v1", "sd_1")):
        return DECLARED
    return BY_KEYS if adapter_cross_dim(evidence) == 768 else 0


FAMILY = Family("sd1", "Stable Diffusion 1.x", PIPELINE, recognise, adapter_match,
                targets=("to_k", "to_q", "to_v", "to_out.0"), blocks=True,
                text_encoders=("text_encoder",),
                base_model="stable-diffusion-v1-5/stable-diffusion-v1-5", resolution=512)
