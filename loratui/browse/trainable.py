"""Can loratui train a LoRA on this model, and with which task? engine.model_kind decides from the configs;
here, whether this loratui has that task."""

from pathlib import Path

from engine import model_kind
from engine.tasks import registry
from loratui.browse.entries import Trainability


def pipeline_tag_tasks() -> dict[str, str]:
    """What the Hub calls a task -> the loratui task that trains such models."""
    return registry.hub_tag_tasks()


def supported_tasks() -> tuple[str, ...]:
    return tuple(t.name for t in registry.tasks())


def from_model_index(index: dict, unet_config: dict | None = None) -> Trainability:
    return _judge(model_kind.from_configs(model_index=index, unet_config=unet_config))


def from_config(config: dict) -> Trainability:
    return _judge(model_kind.from_configs(config=config))


def from_folder(folder: Path) -> Trainability:
    """Judge a model folder (a local folder, a cache snapshot or a built-in) by its config files."""
    return _judge(model_kind.from_folder(folder))


def _judge(kind: model_kind.ModelKind) -> Trainability:
    if kind.task is None:
        return Trainability(False, reason=kind.reason)
    if kind.task not in supported_tasks():
        return Trainability(False, kind.task, kind.family,
                            f"{kind.what}: the {kind.task} task is not supported by this loratui yet")
    return Trainability(True, kind.task, kind.family, kind.what)
