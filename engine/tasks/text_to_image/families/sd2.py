"""Stable Diffusion 2.x: the SD 1.x pipeline with 1024-wide cross-attention (OpenCLIP ViT-H)."""

from engine.tasks.registry import BY_KEYS, DECLARED, AdapterEvidence, Family, ModelConfigs
from engine.tasks.text_to_image.families import adapter_cross_dim, cross_attention_dim, declared, pipeline
from engine.tasks.text_to_image.families.sd1 import PIPELINE

ORDER = 2


def recognise(configs: ModelConfigs) -> str | None:
    if pipeline(configs) == PIPELINE and cross_attention_dim(configs) == 1024:
        return f"{PIPELINE} (sd2)"
    return None


def adapter_match(evidence: AdapterEvidence) -> int:
    if declared(evidence, "stable-diffusion-v2", ("sd_v2", "sd_2")) or evidence.metadata.get("ss_v2") == "True":
        return DECLARED
    return BY_KEYS if adapter_cross_dim(evidence) == 1024 else 0


FAMILY = Family("sd2", "Stable Diffusion 2.x", PIPELINE, recognise, adapter_match,
                targets=("to_k", "to_q", "to_v", "to_out.0"), blocks=True,
                text_encoders=("text_encoder",),
                base_model="stabilityai/stable-diffusion-2-1", resolution=768)
