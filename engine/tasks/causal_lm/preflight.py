"""Causal-LM checks before any model loads: a causal LM (config.json), LoRA targets found in its weights'
headers, how it is to load (4/8 bits need CUDA and bitsandbytes, flash attention its package), the data's
format and columns, and, on a sample, the tokens training will see (formatting.py). No torch."""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from engine import model_kind
from engine.errors import LoratuiError
from engine.launch_check import cuda_available
from engine.lora_targets import linear_layers, unmatched_problem
from engine.model_index import lora_parameter_count
from engine.tasks.causal_lm import layout, tokenizer
from engine.tasks.causal_lm.formatting import Formatter, screen

SAMPLE_ROWS = 1000  # rows tokenized before training: enough for percentiles and to meet a fault early


@dataclass(frozen=True)
class LmInfo:
    pretrained: str
    folder: Path  # holding config.json, and the weights unless only the Hub has them
    family: str
    config: dict


def lm_info(pretrained: str, revision: str = "main") -> LmInfo:
    folder = tokenizer.model_folder(pretrained, revision)
    config = json.loads((folder / "config.json").read_text())
    kind = model_kind.from_configs(config=config)
    if kind.task != "causal-lm":
        trained_by = f"is trained by the {kind.task} task" if kind.task else "has no head loratui trains"
        raise LoratuiError(f"model.pretrained: {pretrained} ({kind.what}) {trained_by}, not causal-lm (allowed: a "
                           "causal language model, *ForCausalLM)", hint="choose a decoder LLM such as Qwen or Llama")
    return LmInfo(pretrained, folder, kind.family, config)


def check_model(model, given: dict[str, dict], report, offline_ok: bool) -> None:
    """`given` holds the valid [train] and [lora] values of the spec (missing ones take the task's defaults)."""
    from engine.tasks.causal_lm.spec import Lora

    _check_loading(model, report)
    try:
        report.info = lm_info(model.pretrained, model.revision)
    except LoratuiError as exc:
        report.unreachable(exc, f"model.pretrained: {model.pretrained}", offline_ok)
        return
    targets = given["lora"].get("target_modules", Lora.model_fields["target_modules"].default)
    problem = unmatched_problem("lora.target_modules", targets, linear_layers(report.info.folder), model.pretrained)
    if problem:
        report.errors.append(problem)


def _check_loading(model, report) -> None:
    for name in ("load_in_4bit", "load_in_8bit"):
        if not getattr(model, name, False):
            continue
        if not cuda_available():
            report.errors.append(f"model.{name}: bitsandbytes quantisation needs a CUDA GPU, and torch sees none "
                                 "here (allowed: false on this machine)")
        elif importlib.util.find_spec("bitsandbytes") is None:
            report.errors.append(f"model.{name}: needs the bitsandbytes package, which is not installed "
                                 "(pip install bitsandbytes)")
    if getattr(model, "attn_implementation", "") == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        report.errors.append("model.attn_implementation: flash_attention_2 needs the flash-attn package, which is not "
                             "installed (allowed: sdpa, eager; or pip install flash-attn)")


def adapter_bytes(spec, info: LmInfo | None) -> int | None:
    """The LoRA weights in fp32, from the weights' headers; None when they are not local."""
    if info is None:
        return None
    count = lora_parameter_count(info.folder, "", spec.lora.target_modules, spec.lora.rank)
    return None if count is None else count * 4


def check_rows(section, rows, report, *, images: bool) -> None:
    found, problems = layout.resolve(section, rows.column_names)
    report.errors.extend(problems)
    if found is None:
        return
    problems = layout.row_problems(found, rows)
    report.errors.extend(problems)
    if isinstance(report.info, LmInfo):
        _check_length(section, report.info, report)
        if not problems:
            _check_tokens(section, found, report.info, rows, report)
    report.notes.append(f"split {section.split}: {found.format} data ({', '.join(found.columns.values())})")


def _check_length(section, info: LmInfo, report) -> None:
    """A max_length the user set must fit in the model's positions. The default follows the model where it is
    more: the section takes the model's positions (so the spec the run stores holds what it trains with), and
    a note says so."""
    positions = info.config.get("max_position_embeddings")
    if not isinstance(positions, int) or section.max_length <= positions:
        return
    if "max_length" in section.model_fields_set:
        report.errors.append(f"data.max_length: {section.max_length} is more than the {positions} positions of "
                             f"{info.pretrained} (allowed: 1 to {positions})")
        return
    default, section.max_length = section.max_length, positions
    report.notes.append(f"data.max_length: {positions} (the model's positions; the default {default} is more)")


def _check_tokens(section, found: layout.Layout, info: LmInfo, rows, report) -> None:
    """The rows as training will see them, on a sample: a template to format them with, the stop token trained,
    something to train in each; token-length percentiles, how many are too long."""
    try:
        formatter = Formatter(section, found, tokenizer.load(str(info.folder)), info.pretrained)
        step = max(1, len(rows) // SAMPLE_ROWS)
        screened = screen(formatter, section, rows, list(range(0, len(rows), step))[:SAMPLE_ROWS])
    except LoratuiError as exc:
        report.errors.append(exc.message)
        return
    report.errors.extend(screened.problems)
    lengths = sorted(screened.lengths)
    shown = ", ".join(f"p{p} {lengths[min(len(lengths) - 1, len(lengths) * p // 100)]}" for p in (50, 90, 99))
    cut = "dropped" if section.overlong == "drop" else "cut to it"
    note = (f"tokens per example ({len(lengths)} rows sampled): {shown}, max {lengths[-1]}; {screened.overlong} "
            f"longer than data.max_length ({section.max_length}), {cut}")
    if section.overlong == "drop" and screened.empty:
        note += f"; {screened.empty} with nothing to train, dropped"
    if formatter.files.added:
        note += f"; the template adds the tokens {', '.join(formatter.files.added)} (embeddings trained in full)"
    report.notes.append(note)
