"""Tensors a PEFT adapter holds beyond its LoRA factors: modules trained in full (modules_to_save, such as a
classification or segmentation head) and trained biases. A combination keeps them only when every parent
holds the very same ones: a head cannot be averaged with another head trained for other weights."""

LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B")


def split(state: dict) -> tuple[dict, dict]:
    """(LoRA factors, everything else)."""
    lora = {k: v for k, v in state.items() if k.endswith(LORA_SUFFIXES)}
    return lora, {k: v for k, v in state.items() if k not in lora}


def agreed(labels: list[str], extras: list[dict]):
    """The extras every parent holds alike, or a LoratuiError naming the module that differs."""
    import torch

    from engine.errors import LoratuiError

    first = extras[0]
    for label, other in zip(labels[1:], extras[1:], strict=True):
        for key in sorted(set(first) | set(other)):
            if key not in first or key not in other or not torch.equal(first[key], other[key]):
                module = key.rsplit(".", 1)[0]
                raise LoratuiError(f"{labels[0]} and {label} differ in {module}, which they train in full",
                                   hint="combine adapters whose heads (modules_to_save) and biases are the same, "
                                        "e.g. trained on from one adapter; or merge them one at a time")
    return first
