"""Per-block LoRA scales in the structure diffusers' set_adapters takes, checked strictly against the pipeline.

A scale is a number, or a dict such as
    {"text_encoder": 0.5, "text_encoder_2": 0.5,
     "unet": {"down": 0.9, "mid": 1.0, "up": {"block_0": 0.6, "block_1": [0.4, 0.8, 1.0]}}}
where "down"/"up" are a number or a dict of block_N, and block_N is a number or one number per transformer.
diffusers ignores blocks that do not exist, or have no transformer layers, without a word; here every such
entry is named and refused, all at once.
"""

import math
from dataclasses import dataclass

from engine.errors import LoratuiError

UNET = "unet"
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class Layout:
    """What per-block scales can address on one pipeline."""

    components: tuple[str, ...]  # LoRA-loadable components the pipeline has
    down: dict[int, int]  # block index -> transformer count, only blocks that have transformers
    mid: int  # transformers in the mid block (0 or 1)
    up: dict[int, int]

    def describe(self) -> str:
        parts = [f"down.block_{i} ({n})" for i, n in self.down.items()]
        parts += ["mid (1)"] if self.mid else []
        parts += [f"up.block_{i} ({n})" for i, n in self.up.items()]
        return "blocks with transformers: " + (", ".join(parts) or "none")


def layout(pipe) -> Layout:
    """The addressable blocks of a loaded diffusers pipeline (its UNet and text encoders)."""
    components = tuple(name for name in (UNET, *TEXT_ENCODERS) if getattr(pipe, name, None) is not None)
    unet = pipe.unet

    def transformers(blocks) -> dict[int, int]:
        return {i: len(b.attentions) for i, b in enumerate(blocks) if getattr(b, "attentions", None)}

    mid = unet.mid_block
    return Layout(
        components=components,
        down=transformers(unet.down_blocks),
        mid=1 if mid is not None and getattr(mid, "attentions", None) else 0,
        up=transformers(unet.up_blocks),
    )


def validate(scale, where: Layout, *, adapter: str, parts: tuple[str, ...]) -> None:
    """Raise LoratuiError naming every entry of `scale` that does not fit `where`.

    `parts` are the components the adapter itself has weights for: a scale for a text encoder the adapter
    does not touch would silently do nothing, so it is refused too.
    """
    errors: list[str] = []
    if not isinstance(scale, dict):
        _number(scale, "weight", errors)
    else:
        for key, value in scale.items():
            if key == UNET:
                _unet(value, where, errors)
            elif key in TEXT_ENCODERS and key in where.components:
                _number(value, key, errors)
                if key not in parts:
                    errors.append(f"{key}: this adapter has no {key} weights")
            elif key in TEXT_ENCODERS:
                errors.append(f"{key}: the base model has no {key}")
            else:
                errors.append(f"{key}: unknown part (allowed: {', '.join(where.components)})")
        if UNET in scale and UNET not in parts:
            errors.append("unet: this adapter has no unet weights")
    if errors:
        raise LoratuiError(
            f"scales for adapter '{adapter}': " + "; ".join(errors),
            hint=f"{where.describe()}; a block is a number or one number per transformer",
        )


def _number(value, where: str, errors: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(f"{where}: {value!r} is not a finite number")


def _unet(value, where: Layout, errors: list[str]) -> None:
    if not isinstance(value, dict):
        _number(value, "unet", errors)
        return
    for part, sub in value.items():
        if part == "mid":
            if not where.mid:
                errors.append("unet.mid: this UNet's mid block has no transformer")
            elif isinstance(sub, list):
                _blocks_list(sub, 1, "unet.mid", errors)
            else:
                _number(sub, "unet.mid", errors)
        elif part in ("down", "up"):
            _side(sub, getattr(where, part), f"unet.{part}", errors)
        else:
            errors.append(f"unet.{part}: unknown part (allowed: down, mid, up)")


def _side(value, blocks: dict[int, int], where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        _number(value, where, errors)
        return
    for key, sub in value.items():
        index = _block_index(key)
        if index is None:
            errors.append(f"{where}.{key}: not a block name (use block_N)")
        elif index not in blocks:
            errors.append(f"{where}.{key}: no such block with transformers")
        elif isinstance(sub, list):
            _blocks_list(sub, blocks[index], f"{where}.{key}", errors)
        else:
            _number(sub, f"{where}.{key}", errors)


def _blocks_list(values: list, expected: int, where: str, errors: list[str]) -> None:
    if len(values) not in (1, expected):
        errors.append(f"{where}: {len(values)} scales given, the block has {expected} transformer(s)")
    for i, value in enumerate(values):
        _number(value, f"{where}[{i}]", errors)


def _block_index(key) -> int | None:
    if isinstance(key, str) and key.startswith("block_") and key[6:].isdigit():
        return int(key[6:])
    return None
