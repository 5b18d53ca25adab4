"""What a model is, read from its model_index.json or config.json alone (no torch): its family and the task
that trains a LoRA on it. The families registered with the tasks (engine.tasks.registry) recognise themselves;
preflight, the library's fit checks, Browse and the built-ins all ask here.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from engine.tasks import registry


@dataclass(frozen=True)
class ModelKind:
    family: str | None
    task: str | None    # the task that trains it; None when no task does (reason says why)
    what: str           # a short description: "StableDiffusionPipeline (sd1)", "bert encoder, ..."
    reason: str = ""


def from_configs(model_index: dict | None = None, config: dict | None = None,
                 unet_config: dict | None = None) -> ModelKind:
    configs = registry.ModelConfigs(model_index or None, None if model_index else config, unet_config)
    if not configs.model_index and not configs.config:
        return ModelKind(None, None, "", "no model_index.json or config.json")
    if configs.config and "_class_name" in configs.config:
        name = configs.config["_class_name"]
        return ModelKind(None, None, name, f"a single diffusers component ({name}): a whole pipeline is needed")
    for task in registry.tasks():
        for family in task.families:
            what = family.recognise(configs)
            if what:
                return ModelKind(family.name, task.name, what)
    return _unknown(configs)


def from_folder(folder: Path) -> ModelKind:
    """The kind of a model folder (a local folder, a cache snapshot or a built-in), by its config files."""
    index = read_json(folder / "model_index.json")
    denoiser = read_json(folder / "unet" / "config.json") or read_json(folder / "transformer" / "config.json")
    return from_configs(index, read_json(folder / "config.json"), denoiser)


def _unknown(configs: registry.ModelConfigs) -> ModelKind:
    if configs.model_index:
        name = configs.model_index.get("_class_name", "")
        known = ", ".join(sorted({f.model_class for t in registry.tasks() if t.adapters.format == "diffusers"
                                  for f in t.families}))
        return ModelKind(None, None, name, f"{name or 'this pipeline'} is not one loratui trains ({known})")
    architectures = configs.config.get("architectures") or []
    what = architectures[0] if architectures else (configs.config.get("model_type") or "this model")
    heads = ", ".join(t.name for t in registry.tasks())
    return ModelKind(None, None, what, f"{what}: no model loratui trains ({heads})")


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
