"""Causal-LM checks before any model loads: a causal LM (config.json), LoRA targets found in its weights'
headers, how it is to load (4/8 bits need CUDA and bitsandbytes, flash attention its package), the data's
format and columns, and a chat template to format them with. No torch."""

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine import model_kind
from engine.errors import LoratuiError
from engine.lora_targets import linear_layers, unmatched_problem
from engine.model_index import lora_parameter_count
from engine.tasks.causal_lm import layout, tokenizer
from engine.tasks.causal_lm.templates import ALLOWED


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


def cuda_available() -> bool:
    """Whether torch could use a CUDA GPU, judged without importing torch: a CUDA build of torch and a GPU
    NVML sees (CUDA_VISIBLE_DEVICES="" hides them all)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    found = importlib.util.find_spec("torch")
    if found is None or not any((Path(found.origin).parent / "lib").glob("libtorch_cuda*")):
        return False
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:  # no driver, no library: no GPU to use
        return False


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
            _check_template(section, found, report.info, report)
    report.notes.append(f"split {section.split}: {found.format} data ({', '.join(found.columns.values())})")


def _check_length(section, info: LmInfo, report) -> None:
    positions = info.config.get("max_position_embeddings")
    if isinstance(positions, int) and section.max_length > positions:
        report.errors.append(f"data.max_length: {section.max_length} is more than the {positions} positions of "
                             f"{info.pretrained} (allowed: 1 to {positions})")


def _check_template(section, found: layout.Layout, info: LmInfo, report) -> None:
    if found.format == "text" or section.template:
        return
    try:
        files = tokenizer.load(str(info.folder))
    except LoratuiError as exc:
        report.errors.append(exc.message)
        return
    if not files.chat_template:
        report.errors.append(f"data.template: the tokenizer of {info.pretrained} has no chat template to format "
                             f"{found.format} data with (allowed: {ALLOWED})")
