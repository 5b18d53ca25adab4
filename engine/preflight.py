"""Preflight: everything that can be checked before any model loads, reported all at once.

Here, what every task shares: optional packages the spec asks for are installed; the output folder is
writable and its disk holds the estimated checkpoints; the dataset loads, has rows and every column the
task's [data] names. The task's own checks (engine/tasks/<task>/preflight.py: the model, images, labels...)
run beside them. No torch: it runs in the supervisor, in a few seconds.
"""

import importlib.util
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from engine import data, launch_check, reach, tasks
from engine.errors import HubUnreachable, LoratuiError
from engine.spec import SpecError, field_is_valid, read_spec_file, spec_errors, spec_model, validate
from engine.tasks import registry


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skip_rows: list[int] = field(default_factory=list)
    info: object = None  # what the task learnt of the model (text-to-image: its model_info.ModelInfo)
    rows: int = 0

    def raise_if_failed(self) -> None:
        if self.errors:
            noun = "problem" if len(self.errors) == 1 else "problems"
            raise LoratuiError(f"preflight found {len(self.errors)} {noun}:\n" + "\n".join(f"  {e}" for e in self.errors),
                               hint="fix the problems above; nothing was started")

    def unreachable(self, exc: LoratuiError, what: str, offline_ok: bool) -> None:
        """A lookup that failed: with offline_ok, a Hub out of reach is a note (not checked), else an error."""
        if offline_ok and isinstance(exc, HubUnreachable):
            self.notes.append(f"{what} not checked: {reach.hub().why_not}")
        else:
            self.errors.extend(exc.message.splitlines())


def check(spec, output: Path, *, images: bool = True, disk: bool = True, offline_ok: bool = False) -> Report:
    """Problems with `spec` when its run folder is to be `output` (it need not exist yet). With offline_ok, a
    Hub model or dataset that cannot be reached is a note (not checked), not an error."""
    report = Report()
    task = tasks.preflight(spec.task)
    # Defaults the user left out that depend on the model follow it, before anything reads them (the run's
    # stored spec then holds what it trains with).
    report.notes += getattr(task, "follow_model", lambda spec: [])(spec)
    task.check_model(spec.model, {"train": spec.train.model_dump(), "lora": spec.lora.model_dump()}, report,
                     offline_ok)
    _check_packages(spec, report)
    launch_check.check(spec, frozenset({"none", *registry.task(spec.task).distributed}), report)
    _check_output(spec, output, report, disk, task.adapter_bytes(spec, report.info))
    rows = _check_data(spec.data, spec.train.seed, report, offline_ok)
    if rows is not None:
        task.check_rows(spec.data, rows, report, images=images)
    if spec.eval.split:
        _check_eval_split(spec, report, images, offline_ok)
    return report


def _check_eval_split(spec, report: Report, images: bool, offline_ok: bool) -> None:
    section = spec.data.model_copy(update={"split": spec.eval.split, "max_samples": spec.eval.max_samples})
    found = Report()
    rows = _check_data(section, spec.train.seed, found, offline_ok)
    if rows is not None:
        tasks.preflight(spec.task).check_rows(section, rows, found, images=images)
    report.notes += found.notes
    for error in found.errors:  # each named as the eval split's; one the training split shares is said once
        named = re.sub(r"^data\.(split|source):", "eval.split:", error)
        if named == error and error not in report.errors:
            named = f"eval.split: in '{spec.eval.split}', {error}"
        if named not in report.errors and error not in report.errors:
            report.errors.append(named)
    if found.skip_rows:
        report.errors.append(f"eval.split: {len(found.skip_rows)} images of '{spec.eval.split}' do not decode "
                             "(the eval split is never skipped: fix or remove them)")


def check_parts(values: dict, errors: list[str], *, offline_ok: bool = False) -> Report:
    """For a spec dict with field problems (`errors`, from spec_errors): the model and dataset checks whose
    fields are valid, so one report holds every problem. No images decoded, no disk checked."""
    report = Report()
    if not field_is_valid(errors, "task"):
        return report
    model = spec_model(values.get("task", tasks.DEFAULT_TASK))
    sections = {name: model.model_fields[name].annotation for name in ("model", "data", "train")}
    valid = {name: {k: v for k, v in values[name].items() if field_is_valid(errors, f"{name}.{k}")}
             if isinstance(values.get(name), dict) else {} for name in ("train", "lora")}
    train = valid["train"]
    task = tasks.preflight(model.model_fields["task"].default)
    if field_is_valid(errors, "model"):
        task.check_model(sections["model"].model_validate(values["model"]), valid, report, offline_ok)
    if field_is_valid(errors, "data") and field_is_valid(errors, "train.seed"):
        seed = train.get("seed", sections["train"].model_fields["seed"].default)
        rows = _check_data(sections["data"].model_validate(values["data"]), seed, report, offline_ok)
        if rows is not None:
            task.check_rows(sections["data"].model_validate(values["data"]), rows, report, images=False)
    return report


def load_checked(path, *, offline_ok: bool = False):
    """The spec in file `path`; a spec with field problems raises SpecError holding those and every model and
    dataset problem the valid fields reveal, all in one report."""
    data = read_spec_file(path)
    errors = spec_errors(data)
    if errors:
        report = check_parts(data, errors, offline_ok=offline_ok)
        raise SpecError(errors + report.errors, str(path), report.notes)
    return validate(data)


def _check_packages(spec, report: Report) -> None:
    tracker = spec.output.report_to
    wanted = [("train.use_8bit_adam", "bitsandbytes", spec.train.use_8bit_adam, "bitsandbytes"),
              ("lora.init", "scipy", spec.lora.init == "loftq", "scipy"),  # peft's LoftQ needs it
              ("output.report_to", tracker, tracker != "none", f"'loratui[{tracker}]'")]
    for where, package, needed, install in wanted:
        if needed and importlib.util.find_spec(package) is None:
            report.errors.append(f"{where}: needs the {package} package, which is not installed "
                                 f"(pip install {install})")


def _check_output(spec, output: Path, report: Report, disk: bool, adapter: int | None) -> None:
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        report.errors.append(f"output.dir: {existing} is not writable (choose a folder you can write to)")
        return
    need = _estimated_bytes(spec.train, adapter)
    if disk and need is not None:
        free = shutil.disk_usage(existing).free
        if free < need:
            report.errors.append(f"output.dir: {existing} has {free / 2**20:.0f} MiB free, the checkpoints need about "
                                 f"{need / 2**20:.0f} MiB (free space, lower train.checkpoints_total_limit, or "
                                 "set output.dir on another disk)")


def _estimated_bytes(train, adapter: int | None) -> int | None:
    """The adapter (its trainable weights, fp32, as the task estimates them) plus the most checkpoints kept
    at once, each the weights and two AdamW moments."""
    if adapter is None:
        return None
    kept = 0
    if train.checkpointing_steps:
        kept = train.checkpoints_total_limit or math.ceil((train.max_steps or 10_000) / train.checkpointing_steps)
        kept += 1  # the new one is written before the oldest goes
    return adapter + kept * (3 * adapter + (1 << 20))


def _check_data(section, seed: int, report: Report, offline_ok: bool = False):
    """The training rows, or None when they cannot be had (the problem is in the report)."""
    try:
        rows = data.load_rows(section, seed)
    except LoratuiError as exc:
        report.unreachable(exc, f"data.source: {section.source} (columns, rows)", offline_ok)
        return None
    report.rows = len(rows)
    if not len(rows):
        report.errors.append(f"data.split: '{section.split}' of {section.source} has no rows")
        return None
    return rows
