"""A base model's files without torch: one file of a Hub model (or the HF cache), a safetensors header's shapes, and
the LoRA parameters a model's layers would take (to estimate checkpoint sizes). Used by the tasks' preflights.
"""

import json
import struct
from pathlib import Path

from engine import reach
from engine.errors import HubUnreachable, LoratuiError, first_line, is_unreachable


def _fetch(pretrained: str, filename: str, revision: str) -> Path:
    """A file of a Hub model, downloaded or from the HF cache; from the cache only when the Hub is out of reach."""
    from huggingface_hub import hf_hub_download

    hub = reach.hub()
    try:
        return Path(hf_hub_download(pretrained, filename, revision=revision or None, local_files_only=not hub.reachable))
    except Exception as exc:
        if is_unreachable(exc) and not hub.reachable:
            raise HubUnreachable(f"model.pretrained: {filename} of '{pretrained}' is not in the HF cache and "
                                 f"{hub.why_not}", hint=hub.hint) from None
        raise (HubUnreachable if is_unreachable(exc) else LoratuiError)(
            f"model.pretrained: cannot fetch {filename} of '{pretrained}' (revision {revision}): "
            f"{first_line(exc, 200)}",
            hint="check the model id and your network; set HF_TOKEN for gated models",
        ) from None


def lora_parameter_count(folder: Path, subfolder: str, targets: list[str], rank: int) -> int | None:
    """LoRA parameters a rank-`rank` adapter on `targets` adds, from safetensors headers; None if unknown."""
    files = sorted((folder / subfolder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        for name, shape in header_shapes(file).items():
            module = name.removesuffix(".weight")
            if name.endswith(".weight") and len(shape) == 2 and (targets == "all-linear" or any(
                module == t or module.endswith("." + t) for t in targets
            )):
                total += rank * (shape[0] + shape[1])
    return total


def header_shapes(path: Path) -> dict[str, list[int]]:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100_000_000:
            return {}
        header = json.loads(handle.read(length))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
