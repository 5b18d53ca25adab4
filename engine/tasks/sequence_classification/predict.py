"""Class probabilities for texts from a base model and a saved adapter, loaded with the stock classes:
AutoModelForSequenceClassification with the adapter's classes, then PeftModel.from_pretrained. The trainer
loads its base with the same load_base, so training and prediction see the same model and tokens."""

import json
from pathlib import Path

from engine import builtin
from engine.adapters.names import WEIGHT_NAMES
from engine.adapters.safeload import read_header
from engine.errors import LoratuiError, first_line

ADAPTER_WEIGHTS = WEIGHT_NAMES[0]  # peft's save_pretrained names it so
_UNSET_MAX_LENGTH = 1_000_000  # tokenizers without a limit report a huge model_max_length


def load_base(pretrained: str, names: list[str], revision: str = "main", variant: str = ""):
    """(tokenizer, model with a new head for `names`, by id); a decoder gets a padding token its head can skip."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ref = builtin.resolve(pretrained)
    kw = {"revision": revision or None}
    tokenizer = AutoTokenizer.from_pretrained(ref, **kw)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            ref, **kw, variant=variant or None, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)}, problem_type="single_label_classification",
            ignore_mismatched_sizes=True,  # a base that already has a head for other classes gets a new one
        )
    except ValueError as exc:
        raise LoratuiError(f"model.pretrained: {pretrained} has no sequence-classification model in transformers "
                           f"({first_line(exc, 160)})",
                           hint="choose an encoder such as BERT, RoBERTa or MiniLM, or a decoder such as Llama") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def token_limit(tokenizer, model, asked: int) -> int | None:
    """Tokens a text (or pair) is cut to: `asked` (0 for no limit of its own), at most what the model takes;
    None when nothing sets a limit."""
    limits = [asked, getattr(model.config, "max_position_embeddings", 0)]
    if tokenizer.model_max_length < _UNSET_MAX_LENGTH:
        limits.append(tokenizer.model_max_length)
    return min((limit for limit in limits if limit), default=None)


def adapter_classes(adapter_path) -> tuple[Path, list[str], dict[str, str]]:
    """(the adapter folder, its class names by id, its header's metadata)."""
    folder = Path(adapter_path).expanduser()
    folder = folder.parent if folder.is_file() else folder
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise LoratuiError(f"{folder} holds no {ADAPTER_WEIGHTS}",
                           hint="give the folder a sequence-classification run saved its adapter in")
    metadata = read_header(folder / ADAPTER_WEIGHTS).metadata
    if "loratui.labels" not in metadata:
        raise LoratuiError(f"{folder / ADAPTER_WEIGHTS} names no classes: not a sequence-classification adapter "
                           "saved by loratui", hint="give the folder of a sequence-classification run's adapter")
    id2label = json.loads(metadata["loratui.labels"])
    return folder, [id2label[str(i)] for i in range(len(id2label))], metadata


def load(base_ref: str, adapter_path):
    """(the base with the adapter on it, a PeftModel, its head sized for the adapter's classes; the tokenizer)."""
    from peft import PeftModel

    folder, names, _ = adapter_classes(adapter_path)
    tokenizer, model = load_base(base_ref, names)
    return PeftModel.from_pretrained(model, folder), tokenizer


def predict(base_ref: str, adapter_path, texts: list[str], pairs: list[str] | None = None,
            batch_size: int = 32) -> list[dict[str, float]]:
    """Per text (and its pair, for an adapter trained on pairs), the probability of each class, by name."""
    import torch

    folder, names, metadata = adapter_classes(adapter_path)
    if (metadata.get("loratui.text_pair") == "true") != (pairs is not None):
        needs = "text pairs" if pairs is None else "single texts"
        raise LoratuiError(f"{folder} classifies {needs}", hint=f"give it {needs}")
    model, tokenizer = load(base_ref, adapter_path)
    model.eval()
    limit = token_limit(tokenizer, model, int(metadata.get("loratui.max_length", 0)))
    found = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], pairs[start:start + batch_size] if pairs else None,
                              truncation=True, max_length=limit, padding=True, return_tensors="pt")
            for row in model(**batch).logits.float().softmax(-1).tolist():
                found.append(dict(zip(names, row, strict=True)))
    return found
