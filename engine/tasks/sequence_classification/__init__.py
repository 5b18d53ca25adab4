"""Sequence classification: PEFT LoRA on a transformers encoder (or decoder) with a new classification head."""

from engine.tasks.causal_lm import PEFT_TASK_TYPES
from engine.tasks.registry import (
    DECLARED,
    AdapterEvidence,
    AdapterSupport,
    Builtin,
    Family,
    ModelConfigs,
    Task,
    TryForm,
    register_task,
)

# Encoder-only transformers that take a classification head on top (AutoModelForSequenceClassification).
ENCODERS = {"albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "modernbert", "mpnet",
            "roberta", "xlm-roberta"}
_OTHER_HEADS = ("ForCausalLM", "ForConditionalGeneration", "ForSemanticSegmentation")


def _recognise(configs: ModelConfigs) -> str | None:
    config = configs.config or {}
    architectures = config.get("architectures") or []
    if configs.model_index or any(a.endswith(_OTHER_HEADS) for a in architectures):
        return None
    found = [a for a in architectures if a.endswith("ForSequenceClassification")]
    if found:
        return found[0]
    model_type = config.get("model_type", "")
    return f"{model_type} encoder, a classification head is added" if model_type in ENCODERS else None


def _adapter_match(evidence: AdapterEvidence) -> int:
    task_type = (evidence.config or {}).get("task_type")
    return DECLARED if task_type and task_type not in PEFT_TASK_TYPES else 0


TEXT = Family("text", "text encoders (BERT, RoBERTa, MiniLM...) with a new classification head",
              "AutoModelForSequenceClassification", _recognise, _adapter_match, targets=("query", "value"),
              hub_files=("config.json",))

TASK = register_task(Task(
    name="sequence-classification",
    summary="a LoRA and a new classification head on a text encoder (or a decoder), trained on labelled texts",
    package=__name__,
    order=1,
    families=(TEXT,),
    also_trains=("llm",),  # decoders take a `score` head
    hub_tags=("text-classification",),
    adapters=AdapterSupport(format="peft", try_form=TryForm("classify", "--text", "class probabilities"),
                            own_head=True, export=("peft",), extra_tensors=True),
    builtins={
        "tiny-bert": Builtin("model", "2-layer BERT encoder (hidden 64) with a WordPiece vocabulary of the reviews, "
                             "random weights", "bert:build_bert", "text"),
        "tiny-reviews": Builtin("dataset", "400 generated reviews, positive or negative (train.jsonl, test.jsonl: "
                                "text, label)", "reviews:build_reviews"),
    },
))
