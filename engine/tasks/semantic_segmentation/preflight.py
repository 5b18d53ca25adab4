"""Semantic-segmentation checks before any model loads: a model AutoModelForSemanticSegmentation loads, with its
image processor; LoRA targets that exist (named as transformers names them once loaded) and that DoRA supports;
masks that decode, are single-channel, the size of their image, and hold only ids of the labels. No torch."""

import io
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.errors import LoratuiError, first_line
from engine.lora_targets import matches, unmatched_problem
from engine.tasks.semantic_segmentation import SEGMENTERS
from engine.tasks.semantic_segmentation.source import (
    ModelFiles,
    class_names,
    layers,
    model_files,
    processor_problem,
    weight_shapes,
)

SHOWN = 5
SAMPLED_ROWS = 32  # rows decoded when not every image is checked (spec validate): spread over the split
SINGLE_CHANNEL = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B")


def check_model(model, given: dict[str, dict], report, offline_ok: bool) -> None:
    """`given` holds the valid [train] and [lora] values of the spec (missing ones take the task's defaults)."""
    try:
        info = model_files(model)
    except LoratuiError as exc:
        report.unreachable(exc, f"model.pretrained: {model.pretrained}", offline_ok)
        return
    report.info = info
    kind = info.kind
    if kind.task != "semantic-segmentation":
        what = f"({kind.what}) is trained by the {kind.task} task" if kind.task else f"is {kind.reason}"
        report.errors.append(f"model.pretrained: {model.pretrained} {what}, not semantic-segmentation (allowed: "
                             f"a segmentation model, such as {', '.join(sorted(SEGMENTERS))})")
        return
    try:
        problem = processor_problem(info)
    except LoratuiError as exc:
        report.unreachable(exc, f"model.pretrained: {model.pretrained} (image processor)", offline_ok)
    else:
        if problem:
            report.errors.append(problem)
    _check_targets(info, given["lora"], report)


def _check_targets(info: ModelFiles, lora: dict, report) -> None:
    from engine.tasks.semantic_segmentation.spec import Lora

    targets = lora.get("target_modules", Lora.model_fields["target_modules"].default)
    found = layers(info)
    if found is None:
        report.notes.append(f"lora.target_modules not checked before loading: the layer names of {info.pretrained} "
                            "are known once transformers loads it")
        return
    problem = unmatched_problem("lora.target_modules", targets, sorted(found), info.pretrained)
    if problem:
        report.errors.append(problem)
    # peft's DoRA covers Linear, Embedding and Conv layers, not torch's MultiheadAttention.
    refused = [name for name, layer in sorted(found.items()) if layer == "attention" and _targeted(targets, name)]
    if lora.get("use_dora") and refused:
        report.errors.append(f"lora.use_dora: DoRA does not support the MultiheadAttention layers lora.target_modules "
                             f"names ({', '.join(refused[:SHOWN])}) (allowed: Linear, Embedding and Conv layers, "
                             "or use_dora = false)")


def _targeted(targets, module: str) -> bool:
    return targets != "all-linear" and any(matches(t, module) for t in targets)


def _wrapped(targets, key: str, shape: list[int]) -> bool:
    return len(shape) == 2 if targets == "all-linear" else _targeted(targets, key.removesuffix(".weight"))


def adapter_bytes(spec, info: ModelFiles | None) -> int | None:
    """LoRA weights, the biases that train, and the decode head (the top-level modules beside the backbone), in
    fp32, from the headers; rank_pattern and DoRA magnitudes left out of this estimate. None when not local."""
    shapes = weight_shapes(info) if info is not None else {}
    if not shapes:
        return None
    lora = spec.lora
    size = {key: math.prod(shape) for key, shape in shapes.items()}
    wrapped = [key.removesuffix(".weight") for key, shape in shapes.items()
               if key.endswith(".weight") and len(shape) >= 2 and _wrapped(lora.target_modules, key, shape)]
    # A LoRA pair per module: rank x inputs (times the kernel), outputs x rank.
    count = sum(lora.rank * (shapes[f"{m}.weight"][0] + size[f"{m}.weight"] // shapes[f"{m}.weight"][0])
                for m in wrapped)
    if lora.bias == "all":
        count += sum(n for key, n in size.items() if key.endswith(".bias"))
    elif lora.bias == "lora_only":
        count += sum(size.get(f"{m}.bias", 0) for m in wrapped)
    tops: dict[str, int] = {}
    for key, n in size.items():
        tops[key.split(".")[0]] = tops.get(key.split(".")[0], 0) + n
    backbone = max(tops, key=tops.get)
    return (count + sum(n for top, n in tops.items() if top != backbone)) * 4


def check_rows(section, rows, report, *, images: bool) -> None:
    """Every image and mask when `images`, else a sample of SAMPLED_ROWS rows (enough for a quick validate)."""
    import datasets

    for field in ("image_column", "mask_column"):
        column = getattr(section, field)
        if not isinstance(rows.features[column], datasets.Image):
            report.errors.append(f"data.{field}: '{column}' holds {type(rows.features[column]).__name__} values, "
                                 "not images (allowed: an image column, or paths in a csv/jsonl)")
            return
    allowed = None
    try:
        allowed = _AllowedIds(section, len(class_names(section, report.info.config if report.info else None)[0]))
    except LoratuiError as exc:
        if report.info is not None:  # else the model's labels are unknown (not found, or out of reach)
            report.errors.append(exc.message)
    indices = list(range(len(rows))) if images else sorted({i * len(rows) // SAMPLED_ROWS for i in range(SAMPLED_ROWS)})
    raw = rows.select(indices).select_columns([section.image_column, section.mask_column])
    for column in (section.image_column, section.mask_column):
        raw = raw.cast_column(column, datasets.Image(decode=False))

    def check(position: int) -> str | None:
        row = raw[position]
        return _row_problem(indices[position], row[section.image_column], row[section.mask_column], allowed)

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(check, range(len(raw))) if p]
    report.errors.extend(problems[:SHOWN])
    if len(problems) > SHOWN:
        report.errors.append(f"data.mask_column: {len(problems) - SHOWN} more rows have such problems")


class _AllowedIds:
    def __init__(self, section, count: int) -> None:
        self.count, self.reduce, self.ignore = count, section.reduce_labels, section.ignore_index
        if self.reduce:  # the processor's reduction: 0 is ignored, 1..n become 0..n-1, 255 stays ignored
            self.text = f"0-{count}: 0 ignored and 1-{count} the {count} labels, as data.reduce_labels asks, or 255"
        else:
            self.text = f"0-{count - 1} for the {count} labels, or {self.ignore} = data.ignore_index"

    def bad(self, ids: np.ndarray) -> list[int]:
        top, ignore = (self.count, 255) if self.reduce else (self.count - 1, self.ignore)
        return [int(i) for i in ids if (i < 0 or i > top) and i != ignore]


def _row_problem(index: int, image: dict, mask: dict, allowed: _AllowedIds | None) -> str | None:
    from PIL import Image

    name = _name(mask) or f"row {index}"
    where = f"data.mask_column: row {index} ({name})"
    try:
        with Image.open(_source(image)) as picture:
            size = picture.size
    except Exception as exc:
        return f"data.image_column: row {index} ({_name(image) or index}): the image does not decode ({first_line(exc, 200)})"
    try:
        with Image.open(_source(mask)) as opened:
            opened.load()
            if opened.mode not in SINGLE_CHANNEL:
                return f"{where}: the mask is {opened.mode}, not one channel of class ids (allowed modes: L, P, I)"
            ids = np.unique(np.asarray(opened))
            mask_size = opened.size
    except Exception as exc:
        return f"{where}: the mask does not decode ({first_line(exc, 200)})"
    if mask_size != size:
        return f"{where}: the mask is {mask_size[0]}x{mask_size[1]}, its image {size[0]}x{size[1]} (allowed: the same size)"
    bad = allowed.bad(ids) if allowed is not None else []
    if bad:
        shown = ", ".join(map(str, bad[:SHOWN])) + (" ..." if len(bad) > SHOWN else "")
        return f"{where}: class id{'s' if len(bad) > 1 else ''} {shown} not among the labels (allowed: {allowed.text})"
    return None


def _source(value: dict):
    return io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]


def _name(value: dict) -> str:
    path = (value or {}).get("path")
    return "/".join(Path(path).parts[-2:]) if path else ""

