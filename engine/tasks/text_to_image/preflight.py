"""Text-to-image checks before any model loads: a Stable Diffusion pipeline whose VAE factor divides the
resolution, and images that decode (a bad one refuses the run or is skipped, per data.bad_images). No torch."""

import os
from pathlib import Path

from engine import data
from engine.errors import LoratuiError
from engine.lora_targets import linear_layers, unmatched_problem
from engine.model_index import lora_parameter_count
from engine.tasks import registry
from engine.tasks.text_to_image.model_info import ModelInfo, model_info

SHOWN_BAD_IMAGES = 5


def check_model(model, given: dict[str, dict], report, offline_ok: bool) -> None:
    """`given` holds the valid [train] and [lora] values of the spec (missing ones take the task's defaults)."""
    from engine.tasks.text_to_image.spec import Lora, Train

    try:
        report.info = model_info(model.pretrained, model.revision)
    except LoratuiError as exc:
        report.unreachable(exc, f"model.pretrained: {model.pretrained}", offline_ok)
        return
    lora = given["lora"]
    wrapped = {"unet": "target_modules"}
    if lora.get("train_text_encoder"):
        wrapped["text_encoder"] = "text_encoder_target_modules"
    for component, field in wrapped.items():
        targets = lora.get(field, Lora.model_fields[field].default)
        problem = unmatched_problem(f"lora.{field}", targets, linear_layers(report.info.folder / component),
                                    f"{model.pretrained} ({component})")
        if problem:
            report.errors.append(problem)
    factor = report.info.vae_scale_factor
    resolution = given["train"].get("resolution", Train.model_fields["resolution"].default)
    if resolution % factor:
        below = resolution - resolution % factor
        report.errors.append(f"train.resolution: {resolution} is not a multiple of the VAE scale factor {factor} "
                             f"(allowed: e.g. {max(below, factor)} or {below + factor})")


def adapter_bytes(spec, info: ModelInfo | None) -> int | None:
    """The LoRA weights in fp32, from the model's safetensors headers; None when the model is not local."""
    if info is None or info.folder is None:
        return None
    lora = spec.lora
    parts = [("unet", lora.target_modules)]
    if lora.train_text_encoder:
        encoders = registry.family(info.family).text_encoders
        parts += [(name, lora.text_encoder_target_modules) for name in encoders]
    counts = [lora_parameter_count(info.folder, sub, targets, lora.rank) for sub, targets in parts]
    return None if None in counts else sum(counts) * 4


def check_rows(section, rows, report, *, images: bool) -> None:
    if not images:
        return
    bad = data.bad_images(rows, section.image_column)
    names = [f"{Path(name).name if os.sep in name else name} ({reason})" for _, name, reason in bad]
    more = f" and {len(bad) - SHOWN_BAD_IMAGES} more" if len(bad) > SHOWN_BAD_IMAGES else ""
    if bad and section.bad_images == "refuse":
        for (_, name, reason) in bad[:SHOWN_BAD_IMAGES]:
            report.errors.append(f"data: image {name} does not decode ({reason}): fix or remove it, or set "
                                 'data.bad_images = "skip"')
        if more:
            report.errors.append(f"data:{more} images do not decode")
    elif bad:
        report.skip_rows = [index for index, _, _ in bad]
        report.notes.append(f"skipping {len(bad)} images that do not decode: {', '.join(names[:SHOWN_BAD_IMAGES])}{more}")
        if len(bad) == len(rows):
            report.errors.append("data: no image decodes, nothing is left to train on")
