"""What a causal-lm run costs: the decoder's parameters with LoRA, and memory for max_length tokens a sample."""

from pathlib import Path

from engine.tasks.cost import count_peft_model, transformer_memory

CONFIG_FILES = ["config.json"]


def configs_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def count_parameters(folder: Path, spec) -> dict:
    return count_peft_model(folder, spec, "AutoModelForCausalLM")


def memory_bytes(spec, counts: dict) -> int:
    positions = counts["config"].get("max_position_embeddings") or spec.data.max_length
    return transformer_memory(spec, counts, min(spec.data.max_length, positions))
