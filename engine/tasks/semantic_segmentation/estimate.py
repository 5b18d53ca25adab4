"""What a semantic-segmentation run costs: the model with LoRA and its decode head, and memory for the image
processor's size (its first stage sees a token per 4 x 4 pixels)."""

from pathlib import Path

from engine.tasks.cost import count_peft_model, read_json, transformer_memory

CONFIG_FILES = ["config.json", "preprocessor_config.json"]
DEFAULT_SIDE = 512  # SegFormer's processors resize to 512 x 512
PATCH = 4


def configs_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def count_parameters(folder: Path, spec) -> dict:
    overrides = {"num_labels": len(spec.data.labels)} if spec.data.labels else {}
    counts = count_peft_model(folder, spec, "AutoModelForSemanticSegmentation", **overrides)
    size = read_json(folder / "preprocessor_config.json").get("size") or {}
    counts["pixels"] = (size.get("height") or DEFAULT_SIDE) * (size.get("width") or DEFAULT_SIDE)
    return counts


def memory_bytes(spec, counts: dict) -> int:
    return transformer_memory(spec, counts, counts.get("pixels", DEFAULT_SIDE**2) // PATCH**2)
