"""The sequence-classification spec: texts (or text pairs) and their labels in [data], the encoder's attention
layers in [lora] (the new classification head always trains in full), the token limit in [train]. No torch."""

from typing import Literal

from pydantic import Field, model_validator

from engine.errors import LoratuiError
from engine.spec import DataSection, LoraSection, Spec, TrainSection, column_role

FAMILIES = ("text", "llm")  # encoders (BERT, RoBERTa, MiniLM...) and decoders with a `score` head (Llama...)
# Each family's attention layers, the default targets (Lora's own default is the encoders'): preflight gives a
# spec that leaves target_modules out its model family's.
TARGETS = {"text": ["query", "value"], "llm": ["q_proj", "v_proj"]}
_TINY = {"tiny-bert": "text", "tiny-llama": "llm"}
_BASE_MODELS = {"text": "google-bert/bert-base-uncased", "llm": "Qwen/Qwen2.5-0.5B"}


class Data(DataSection):
    text_column: str = Field("text", min_length=1, description="Column holding the texts to classify",
                             json_schema_extra=column_role("text", ("string",), ("text", "sentence", "review",
                                                                                 "content", "sentence1")))
    text_pair_column: str = Field(
        "", description="Column holding a second text per row (entailment, paraphrase...); empty for single texts"
    )
    label_column: str = Field(
        "label", min_length=1, description="Column holding the labels: strings, integers or a ClassLabel",
        json_schema_extra=column_role("label", ("class label*", "string", "int*"), ("label", "labels", "class",
                                                                                   "sentiment", "category")),
    )
    labels: list[str] = Field(
        [], description="Class names in id order (for integer labels, the names of 0, 1, ...); empty: the labels "
        "found in the data, sorted (integers as given, a ClassLabel's own order)"
    )

    @model_validator(mode="after")
    def _distinct_labels(self):
        twice = sorted({name for name in self.labels if self.labels.count(name) > 1})
        if twice:
            raise ValueError(f"labels: {', '.join(map(repr, twice))} listed more than once (each class once)")
        if len(self.labels) == 1:
            raise ValueError(f"labels: only {self.labels[0]!r} (allowed: at least 2 classes, or empty)")
        return self


class Lora(LoraSection):
    rank: int = Field(8, gt=0, description="Inner dimension of the LoRA matrices; higher trains more parameters")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator: the update is scaled by alpha / rank")
    target_modules: list[str] | Literal["all-linear"] = Field(
        ["query", "value"], min_length=1, description='Layers that get a LoRA: names (matched as suffixes) or '
        '"all-linear"; BERT-style encoders name their attention layers query, key, value. The classification '
        "head is trained in full and saved with the adapter"
    )


class Train(TrainSection):
    max_length: int = Field(
        0, ge=0, description="Cut texts (or pairs) to this many tokens; 0: as many as the model takes"
    )


class SequenceClassificationSpec(Spec):
    task: Literal["sequence-classification"] = Field("sequence-classification", description="What to train")
    data: Data = Field(description="The training data: texts and their labels")
    lora: Lora = Field(default_factory=Lora, description="The adapter")
    train: Train = Field(description="Optimisation, text length, checkpoints")


SPEC = SequenceClassificationSpec


def template(family: str | None, model: str, data: str) -> dict:
    """Values for an encoder (text) or decoder (llm) family; with no model, builtin:tiny-bert on
    builtin:tiny-reviews, which goes from chance to over 90% test accuracy offline in well under a minute."""
    if family is not None and family not in FAMILIES:
        raise LoratuiError(f"unknown model family '{family}' for sequence-classification",
                           hint="families: " + ", ".join(FAMILIES))
    if not model:
        model = _BASE_MODELS[family] if family else "builtin:tiny-bert"
    tiny = model.removeprefix("builtin:") if model.startswith("builtin:") else ""
    family = family or _TINY.get(tiny, "text")
    small = tiny in _TINY
    data = data or ("builtin:tiny-reviews" if small else "path/to/data.csv")
    train = {"batch_size": 16, "learning_rate": 2e-3 if small else 2e-4, "lr_scheduler": "constant" if small else
             "linear", "checkpointing_steps": 250 if small else 500}
    train.update({"max_steps": 500} if small else {"num_epochs": 3, "lr_warmup_steps": 50})
    # The built-in reviews come with a test split; other data gives up a share of its rows.
    held_out = {"split": "test"} if data == "builtin:tiny-reviews" else {"split_ratio": 0.1}
    return {
        "name": "reviews-demo" if small else "classifier-lora",
        "task": "sequence-classification",
        "model": {"pretrained": model},
        "data": {"source": data},
        "lora": {"target_modules": TARGETS[family]},
        "train": train,
        "eval": {**held_out, "every_steps": 100 if small else 0, "every_epochs": 0 if small else 1},
    }
