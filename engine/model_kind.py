"""What a model is, read from its model_index.json or config.json alone (no torch): its family and the task
that trains a LoRA on it. The one place that decides: preflight, the library's fit checks, Browse and the
built-ins all ask here.

Families: sd1, sd2, sdxl (diffusers pipelines); llm (causal language models); text (encoders that take a
classification head); vision (semantic segmentation models).
"""

import json
from dataclasses import dataclass
from pathlib import Path

# Diffusers pipelines the text-to-image task knows, by model_index.json's _class_name.
PIPELINES = {"StableDiffusionPipeline": "sd1", "StableDiffusionXLPipeline": "sdxl"}
# Encoder-only transformers that take a classification head on top (AutoModelForSequenceClassification).
ENCODERS = {"albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "modernbert", "mpnet",
            "roberta", "xlm-roberta"}
# Backbones AutoModelForSemanticSegmentation builds with a head.
SEGMENTERS = {"segformer", "beit", "data2vec-vision", "dpt", "mobilenet_v2", "mobilevit", "mobilevitv2", "upernet"}


@dataclass(frozen=True)
class ModelKind:
    family: str | None
    task: str | None    # the task that trains it; None when no task does (reason says why)
    what: str           # a short description: "StableDiffusionPipeline (sd1)", "bert encoder, ..."
    reason: str = ""


def from_configs(model_index: dict | None = None, config: dict | None = None,
                 unet_config: dict | None = None) -> ModelKind:
    if model_index:
        return _pipeline(model_index, unet_config)
    if config:
        return _transformers(config)
    return ModelKind(None, None, "", "no model_index.json or config.json")


def from_folder(folder: Path) -> ModelKind:
    """The kind of a model folder (a local folder, a cache snapshot or a built-in), by its config files."""
    return from_configs(read_json(folder / "model_index.json"), read_json(folder / "config.json"),
                        read_json(folder / "unet" / "config.json"))


def _pipeline(index: dict, unet_config: dict | None) -> ModelKind:
    name = index.get("_class_name", "")
    family = PIPELINES.get(name)
    if family is None:
        known = ", ".join(sorted(PIPELINES))
        return ModelKind(None, None, name, f"{name or 'this pipeline'} is not one loratui trains ({known})")
    if family == "sd1" and (unet_config or {}).get("cross_attention_dim") == 1024:
        family = "sd2"
    return ModelKind(family, "text-to-image", f"{name} ({family})")


def _transformers(config: dict) -> ModelKind:
    if "_class_name" in config:
        return ModelKind(None, None, config["_class_name"],
                         f"a single diffusers component ({config['_class_name']}): a whole pipeline is needed")
    architectures = config.get("architectures") or []
    model_type = config.get("model_type", "")
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in architectures):
        return ModelKind("llm", "causal-lm", architectures[0])
    if any(a.endswith("ForSemanticSegmentation") for a in architectures) or model_type in SEGMENTERS:
        return ModelKind("vision", "semantic-segmentation", architectures[0] if architectures else model_type)
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return ModelKind("text", "sequence-classification", architectures[0])
    if model_type in ENCODERS:
        return ModelKind("text", "sequence-classification", f"{model_type} encoder, a classification head is added")
    what = architectures[0] if architectures else (model_type or "this model")
    return ModelKind(None, None, what, f"{what}: no causal-LM, classification, segmentation or text-to-image "
                                       "head loratui trains")


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
