"""What a sequence-classification run costs: the encoder with LoRA and its new head, and memory for its texts."""

from pathlib import Path

from engine.tasks.cost import count_peft_model, transformer_memory

CONFIG_FILES = ["config.json"]
TYPICAL_TOKENS = 512  # a text's tokens when neither the spec nor the model bounds them


def configs_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def count_parameters(folder: Path, spec) -> dict:
    classes = max(2, len(spec.data.labels))  # the labels found in the data are not known here: at least two
    return count_peft_model(folder, spec, "AutoModelForSequenceClassification", num_labels=classes)


def memory_bytes(spec, counts: dict) -> int:
    positions = counts["config"].get("max_position_embeddings") or TYPICAL_TOKENS
    tokens = min(spec.train.max_length or TYPICAL_TOKENS, positions)
    return transformer_memory(spec, counts, tokens)
