"""Preflight: everything that can be checked before any model loads, reported all at once.

The base model is reachable and its VAE factor divides the resolution; optional packages the spec asks
for are installed; the output folder is writable and its disk holds the estimated checkpoints; the
dataset loads, has the named columns, and every image decodes (a bad one refuses the run or is skipped,
per data.bad_images). No torch: it runs in the supervisor, in a few seconds.
"""

import importlib.util
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from engine import data, reach
from engine.errors import HubUnreachable, LoratuiError
from engine.model_index import ModelInfo, lora_parameter_count, model_info
from engine.spec import (
    DataSection,
    ModelSection,
    Spec,
    SpecError,
    TrainSection,
    field_is_valid,
    read_spec_file,
    spec_errors,
)

SHOWN_BAD_IMAGES = 5


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skip_rows: list[int] = field(default_factory=list)
    info: ModelInfo | None = None
    rows: int = 0

    def raise_if_failed(self) -> None:
        if self.errors:
            noun = "problem" if len(self.errors) == 1 else "problems"
            raise LoratuiError(f"preflight found {len(self.errors)} {noun}:\n" + "\n".join(f"  {e}" for e in self.errors),
                               hint="fix the problems above; nothing was started")


def check(spec, output: Path, *, images: bool = True, disk: bool = True, offline_ok: bool = False) -> Report:
    """Problems with `spec` when its run folder is to be `output` (it need not exist yet). With offline_ok, a
    Hub model or dataset that cannot be reached is a note (not checked), not an error."""
    report = Report()
    _check_model(spec.model, spec.train.resolution, report, offline_ok)
    _check_packages(spec, report)
    _check_output(spec, output, report, disk)
    _check_data(spec.data, spec.train.seed, report, images, offline_ok)
    return report


def check_parts(data: dict, errors: list[str], *, offline_ok: bool = False) -> Report:
    """For a spec dict with field problems (`errors`, from spec_errors): the model and dataset checks whose
    fields are valid, so one report holds every problem. No images decoded, no disk checked."""
    report = Report()
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    defaults = TrainSection.model_fields
    if field_is_valid(errors, "model"):
        resolution = train.get("resolution", defaults["resolution"].default)
        _check_model(ModelSection.model_validate(data["model"]),
                     resolution if field_is_valid(errors, "train.resolution") else None, report, offline_ok)
    if field_is_valid(errors, "data") and field_is_valid(errors, "train.seed"):
        _check_data(DataSection.model_validate(data["data"]), train.get("seed", defaults["seed"].default), report,
                    images=False, offline_ok=offline_ok)
    return report


def load_checked(path, *, offline_ok: bool = False):
    """The spec in file `path`; a spec with field problems raises SpecError holding those and every model and
    dataset problem the valid fields reveal, all in one report."""
    data = read_spec_file(path)
    errors = spec_errors(data)
    if errors:
        report = check_parts(data, errors, offline_ok=offline_ok)
        raise SpecError(errors + report.errors, str(path), report.notes)
    return Spec.model_validate(data)


def _unreachable(report: Report, exc: LoratuiError, what: str, offline_ok: bool) -> None:
    if offline_ok and isinstance(exc, HubUnreachable):
        report.notes.append(f"{what} not checked: {reach.hub().why_not}")
    else:
        report.errors.extend(exc.message.splitlines())


def _check_model(model, resolution: int | None, report: Report, offline_ok: bool) -> None:
    try:
        report.info = model_info(model.pretrained, model.revision)
    except LoratuiError as exc:
        _unreachable(report, exc, f"model.pretrained: {model.pretrained}", offline_ok)
        return
    factor = report.info.vae_scale_factor
    if resolution is not None and resolution % factor:
        below = resolution - resolution % factor
        report.errors.append(f"train.resolution: {resolution} is not a multiple of the VAE scale factor {factor} "
                             f"(allowed: e.g. {max(below, factor)} or {below + factor})")


def _check_packages(spec, report: Report) -> None:
    tracker = spec.output.report_to
    wanted = [("train.use_8bit_adam", "bitsandbytes", spec.train.use_8bit_adam, "bitsandbytes"),
              ("output.report_to", tracker, tracker != "none", f"'loratui[{tracker}]'")]
    for where, package, needed, install in wanted:
        if needed and importlib.util.find_spec(package) is None:
            report.errors.append(f"{where}: needs the {package} package, which is not installed "
                                 f"(pip install {install})")


def _check_output(spec, output: Path, report: Report, disk: bool) -> None:
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        report.errors.append(f"output.dir: {existing} is not writable (choose a folder you can write to)")
        return
    need = _estimated_bytes(spec, report.info)
    if disk and need is not None:
        free = shutil.disk_usage(existing).free
        if free < need:
            report.errors.append(f"output.dir: {existing} has {free / 2**20:.0f} MiB free, the checkpoints need about "
                                 f"{need / 2**20:.0f} MiB (free space, lower train.checkpoints_total_limit, or "
                                 "set output.dir on another disk)")


def _estimated_bytes(spec, info: ModelInfo | None) -> int | None:
    """The adapter plus the most checkpoints kept at once, each LoRA weights + two AdamW moments, fp32."""
    if info is None or info.folder is None:
        return None
    lora, train = spec.lora, spec.train
    parts = [("unet", lora.target_modules)]
    if lora.train_text_encoder:
        encoders = ["text_encoder", "text_encoder_2"] if info.family == "sdxl" else ["text_encoder"]
        parts += [(name, lora.text_encoder_target_modules) for name in encoders]
    counts = [lora_parameter_count(info.folder, sub, targets, lora.rank) for sub, targets in parts]
    if None in counts:
        return None
    adapter = sum(counts) * 4
    kept = 0
    if train.checkpointing_steps:
        kept = train.checkpoints_total_limit or math.ceil((train.max_steps or 10_000) / train.checkpointing_steps)
        kept += 1  # the new one is written before the oldest goes
    return adapter + kept * (3 * adapter + (1 << 20))


def _check_data(section, seed: int, report: Report, images: bool, offline_ok: bool = False) -> None:
    try:
        rows = data.load_rows(section, seed)
    except LoratuiError as exc:
        _unreachable(report, exc, f"data.source: {section.source} (columns, rows)", offline_ok)
        return
    report.rows = len(rows)
    if not len(rows):
        report.errors.append(f"data.split: '{section.split}' of {section.source} has no rows")
        return
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
