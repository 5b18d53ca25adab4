"""Can loratui train a LoRA on this model, and with which task? Read from model_index.json or config.json."""

import json
from pathlib import Path

from loratui.browse.entries import Trainability

# Diffusers pipelines the text-to-image task knows, by model_index.json's _class_name.
IMAGE_PIPELINES = {"StableDiffusionPipeline": "sd1", "StableDiffusionXLPipeline": "sdxl"}
# Encoder-only transformers that take a classification head on top (AutoModelForSequenceClassification).
ENCODERS = {
    "albert",
    "bert",
    "camembert",
    "deberta",
    "deberta-v2",
    "distilbert",
    "electra",
    "modernbert",
    "mpnet",
    "roberta",
    "xlm-roberta",
}
# What the Hub calls a task, and what loratui's spec calls it.
PIPELINE_TAG_TASKS = {
    "text-to-image": "text-to-image",
    "text-generation": "causal-lm",
    "text-classification": "sequence-classification",
}


def supported_tasks() -> tuple[str, ...]:
    """The tasks a spec accepts, read from the spec's own schema."""
    from engine.spec import TASKS

    return tuple(TASKS)


def from_model_index(index: dict, unet_config: dict | None = None) -> Trainability:
    name = index.get("_class_name", "")
    family = IMAGE_PIPELINES.get(name)
    if family is None:
        known = ", ".join(sorted(IMAGE_PIPELINES))
        return Trainability(False, reason=f"{name or 'this pipeline'} is not one loratui trains ({known})")
    if family == "sd1" and unet_config and unet_config.get("cross_attention_dim") == 1024:
        family = "sd2"
    return _judge("text-to-image", family, f"{name} ({family})")


def from_config(config: dict) -> Trainability:
    if "_class_name" in config:
        return Trainability(
            False,
            reason=f"a single diffusers component ({config['_class_name']}): a whole pipeline is needed",
        )
    architectures = config.get("architectures") or []
    model_type = config.get("model_type", "")
    if any(a.endswith("ForCausalLM") for a in architectures):
        return _judge("causal-lm", "llm", f"{architectures[0]}")
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return _judge("sequence-classification", model_type or None, f"{architectures[0]}")
    if model_type in ENCODERS:
        return _judge(
            "sequence-classification", model_type, f"{model_type} encoder, a classification head is added"
        )
    what = architectures[0] if architectures else (model_type or "this model")
    return Trainability(
        False, reason=f"{what}: no causal-LM, classification or text-to-image head loratui trains"
    )


def from_folder(folder: Path) -> Trainability:
    """Judge a model folder (a local folder, a cache snapshot or a built-in) by its config files."""
    index = _read_json(folder / "model_index.json")
    if index is not None:
        return from_model_index(index, _read_json(folder / "unet" / "config.json"))
    config = _read_json(folder / "config.json")
    if config is not None:
        return from_config(config)
    return Trainability(False, reason="no model_index.json or config.json in the folder")


def _judge(task: str, family: str | None, what: str) -> Trainability:
    if task not in supported_tasks():
        return Trainability(
            False, task, family, f"{what}: the {task} task is not supported by this loratui yet"
        )
    return Trainability(True, task, family, what)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
