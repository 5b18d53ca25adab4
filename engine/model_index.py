"""What a base model is, read from its model_index.json and config files, without torch.

Used by preflight (in the supervisor) and by the tasks: the family (sd1, sd2, sdxl), the VAE's scale
factor, and the shapes of the layers a LoRA would wrap (to estimate checkpoint sizes).
"""

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from engine import builtin, model_kind, reach
from engine.errors import HubUnreachable, LoratuiError, is_unreachable

MODEL_INDEX = "model_index.json"


@dataclass(frozen=True)
class ModelInfo:
    folder: Path | None  # local copy holding model_index.json (None when only the Hub has it)
    pipeline: str
    family: str
    vae_scale_factor: int


def locate(pretrained: str, revision: str = "main") -> Path:
    """A local folder holding the model's model_index.json: built-ins are built, Hub ids fetched (or cached)."""
    if builtin.is_builtin(pretrained):
        return builtin.path(pretrained)
    path = Path(pretrained).expanduser()
    if path.is_dir():
        if not (path / MODEL_INDEX).is_file():
            raise LoratuiError(f"model.pretrained: {path} has no {MODEL_INDEX}",
                               hint="point it at a diffusers pipeline folder (save_pretrained output)")
        return path
    if pretrained.startswith((".", "/", "~")):
        raise LoratuiError(f"model.pretrained: {pretrained} does not exist", hint="check the path")
    return _fetch(pretrained, MODEL_INDEX, revision).parent


def _fetch(pretrained: str, filename: str, revision: str) -> Path:
    """A file of a Hub model, downloaded or from the HF cache; from the cache only when the Hub is out of reach."""
    from huggingface_hub import hf_hub_download

    hub = reach.hub()
    try:
        return Path(hf_hub_download(pretrained, filename, revision=revision or None, local_files_only=not hub.reachable))
    except Exception as exc:
        if is_unreachable(exc) and not hub.reachable:
            raise HubUnreachable(f"model.pretrained: {filename} of '{pretrained}' is not in the HF cache and "
                                 f"{hub.why_not}", hint=hub.hint) from None
        raise (HubUnreachable if is_unreachable(exc) else LoratuiError)(
            f"model.pretrained: cannot fetch {filename} of '{pretrained}' (revision {revision}): "
            f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
            hint="check the model id and your network; set HF_TOKEN for gated models",
        ) from None


def _config(folder: Path, subfolder: str, pretrained: str, revision: str) -> dict:
    path = folder / subfolder / "config.json"
    if not path.is_file():
        path = _fetch(pretrained, f"{subfolder}/config.json", revision)
    return json.loads(path.read_text())


def model_info(pretrained: str, revision: str = "main") -> ModelInfo:
    folder = locate(pretrained, revision)
    index = json.loads((folder / MODEL_INDEX).read_text())
    pipeline = index.get("_class_name", "")
    unet = _config(folder, "unet", pretrained, revision) if "unet" in index else None
    kind = model_kind.from_configs(model_index=index, unet_config=unet)
    if kind.task != "text-to-image" or "text_encoder" not in index:
        raise LoratuiError(f"model.pretrained: {pretrained}: {kind.reason or 'a pipeline without a text encoder'}",
                           hint="text-to-image LoRA supports Stable Diffusion 1.x/2.x and SDXL")
    vae = _config(folder, "vae", pretrained, revision)
    factor = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
    return ModelInfo(folder, pipeline, kind.family, factor)


def lora_parameter_count(folder: Path, subfolder: str, targets: list[str], rank: int) -> int | None:
    """LoRA parameters a rank-`rank` adapter on `targets` adds, from safetensors headers; None if unknown."""
    files = sorted((folder / subfolder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        for name, shape in header_shapes(file).items():
            module = name.removesuffix(".weight")
            if name.endswith(".weight") and len(shape) == 2 and (targets == "all-linear" or any(
                module == t or module.endswith("." + t) for t in targets
            )):
                total += rank * (shape[0] + shape[1])
    return total


def header_shapes(path: Path) -> dict[str, list[int]]:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100_000_000:
            return {}
        header = json.loads(handle.read(length))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
