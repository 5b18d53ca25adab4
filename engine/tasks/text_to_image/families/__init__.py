"""Text-to-image model families, one module each (FAMILY, a registry.Family), found here in the order of ORDER;
and the evidence they share: a pipeline's class name, an adapter's cross-attention width and kohya's metadata."""

import pkgutil
from importlib import import_module

from engine.tasks.registry import AdapterEvidence, ModelConfigs


def pipeline(configs: ModelConfigs) -> str:
    return (configs.model_index or {}).get("_class_name", "")


def cross_attention_dim(configs: ModelConfigs) -> int | None:
    return (configs.denoiser or {}).get("cross_attention_dim")


def adapter_cross_dim(evidence: AdapterEvidence) -> int | None:
    """The width of the text a UNet LoRA's cross-attention reads: 768 (SD 1.x), 1024 (SD 2.x), 2048 (SDXL)."""
    for _, name, down in evidence.modules:
        if name.endswith("attn2.to_k"):
            return evidence.shapes[down][1]
    return None


def declared(evidence: AdapterEvidence, architecture: str, versions: tuple[str, ...]) -> bool:
    """The file says which base it was trained on: modelspec's architecture or kohya's ss_base_model_version."""
    meta = evidence.metadata
    return architecture in meta.get("modelspec.architecture", "") or \
        meta.get("ss_base_model_version", "").startswith(versions)


def families() -> tuple:
    found = [import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return tuple(m.FAMILY for m in sorted(found, key=lambda m: m.ORDER))
