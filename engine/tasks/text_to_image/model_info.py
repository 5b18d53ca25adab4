"""What a text-to-image base model is, read from its model_index.json and config files, without torch: its family
and the VAE's scale factor. Used by preflight (in the supervisor) and the trainer."""

import json
from dataclasses import dataclass
from pathlib import Path

from engine import builtin, model_kind
from engine.errors import LoratuiError
from engine.model_index import _fetch
from engine.tasks.text_to_image import TASK

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
    if kind.family not in TASK.family_names() or "text_encoder" not in index:
        raise LoratuiError(f"model.pretrained: {pretrained}: {kind.reason or 'a pipeline without a text encoder'}",
                           hint="text-to-image LoRA supports Stable Diffusion 1.x/2.x and SDXL")
    vae = _config(folder, "vae", pretrained, revision)
    factor = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
    return ModelInfo(folder, pipeline, kind.family, factor)
