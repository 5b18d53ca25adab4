"""Sequence-classification checks before any model loads: a transformers model (its config.json), LoRA
targets found in its weights' headers, labels a classification head can learn, texts that are text. No torch."""

import json
from dataclasses import dataclass
from pathlib import Path

from engine import builtin, model_kind, reach
from engine.adapters.hub import remote_shapes
from engine.errors import LoratuiError
from engine.lora_targets import matches, unmatched_problem
from engine.model_index import _fetch, header_shapes, lora_parameter_count
from engine.tasks.sequence_classification import labels

SHOWN_CLASSES = 10
_MHA = "MultiheadAttention"  # LoRA wraps it, DoRA does not (peft refuses it)


@dataclass(frozen=True)
class EncoderInfo:
    folder: Path  # holding config.json, and the weights unless only the Hub has them
    family: str
    config: dict


def encoder_info(pretrained: str, revision: str = "main") -> EncoderInfo:
    """The model's config.json, from a built-in, a folder, or the Hub (or its cache)."""
    if builtin.is_builtin(pretrained):
        folder = builtin.path(pretrained)
    elif Path(pretrained).expanduser().is_dir():
        folder = Path(pretrained).expanduser()
        if not (folder / "config.json").is_file():
            what = "a diffusers pipeline" if (folder / "model_index.json").is_file() else "a folder without config.json"
            raise LoratuiError(f"model.pretrained: {pretrained} is {what}, not a transformers model",
                               hint="point it at a transformers model folder (save_pretrained output), e.g. a BERT")
    elif pretrained.startswith((".", "/", "~")):
        raise LoratuiError(f"model.pretrained: {pretrained} does not exist", hint="check the path")
    else:
        folder = _fetch(pretrained, "config.json", revision).parent
    config = json.loads((folder / "config.json").read_text())
    if not config.get("model_type"):
        raise LoratuiError(f"model.pretrained: the config.json of {pretrained} names no model_type",
                           hint="point it at a transformers model, e.g. a BERT-style encoder")
    kind = model_kind.from_configs(config=config)
    # A decoder (llm) takes a classification head too (LlamaForSequenceClassification...); other tasks' models not.
    if kind.task not in ("sequence-classification", None) and kind.family != "llm":
        raise LoratuiError(f"model.pretrained: {pretrained} ({kind.what}) is trained by the {kind.task} task, not "
                           "sequence-classification", hint="choose an encoder such as BERT, RoBERTa or MiniLM, or a "
                           "decoder LLM")
    return EncoderInfo(folder, kind.family or "text", config)


def follow_model(spec) -> list[str]:
    """Defaults the spec left out that depend on its model, taken from the model (notes saying so): target_modules
    are the family's attention layers, a decoder's q_proj and v_proj where the encoders' query and value are the
    default. A model that cannot be read is left to check_model to report."""
    from engine.tasks.sequence_classification.spec import TARGETS

    if "target_modules" in spec.lora.model_fields_set:
        return []
    try:
        family = encoder_info(spec.model.pretrained, spec.model.revision).family
    except LoratuiError:
        return []
    if TARGETS.get(family, spec.lora.target_modules) == spec.lora.target_modules:
        return []
    default, spec.lora.target_modules = spec.lora.target_modules, TARGETS[family]
    return [f"lora.target_modules: {', '.join(TARGETS[family])} (the attention layers of {spec.model.pretrained}; "
            f"the default {', '.join(default)} is an encoder's)"]


def check_model(model, given: dict[str, dict], report, offline_ok: bool) -> None:
    """`given` holds the valid [train] and [lora] values of the spec (missing target_modules take the model
    family's, as follow_model gives them; other missing ones the task's defaults)."""
    from engine.tasks.sequence_classification.spec import TARGETS, Lora

    try:
        report.info = encoder_info(model.pretrained, model.revision)
    except LoratuiError as exc:
        report.unreachable(exc, f"model.pretrained: {model.pretrained}", offline_ok)
        return
    lora = given["lora"]
    targets = lora.get("target_modules", TARGETS.get(report.info.family, Lora.model_fields["target_modules"].default))
    kinds = _layer_kinds(report, model)
    problem = unmatched_problem("lora.target_modules", targets, sorted(kinds), model.pretrained)
    if problem:
        report.errors.append(problem)
    if lora.get("use_dora") and targets != "all-linear":
        refused = sorted(m for m, kind in kinds.items() if kind == _MHA and any(matches(t, m) for t in targets))
        if refused:
            report.errors.append(f"lora.use_dora: DoRA does not support {_MHA} layers, and lora.target_modules "
                                 f"matches {len(refused)} in {model.pretrained} (e.g. {refused[0]}) (allowed: "
                                 "Linear, Embedding and Conv layers): set use_dora = false or target other layers")
    positions = report.info.config.get("max_position_embeddings")
    max_length = given["train"].get("max_length", 0)
    if isinstance(positions, int) and max_length > positions:
        report.errors.append(f"train.max_length: {max_length} is more than the {positions} positions of "
                             f"{model.pretrained} (allowed: 0 to {positions}; 0 takes them all)")


def _layer_kinds(report, model) -> dict[str, str]:
    """Module -> layer type (Linear, Conv, MultiheadAttention) of every layer a LoRA could wrap, from the
    weights' headers; empty (nothing judged) when the weights are neither local nor reachable."""
    files = sorted(report.info.folder.glob("*.safetensors"))
    shapes = {key: shape for file in files for key, shape in header_shapes(file).items()}
    if not files and not builtin.is_builtin(model.pretrained) and reach.hub().reachable:
        try:
            shapes = {k: s for part in remote_shapes(model.pretrained, model.revision).values() for k, s in part.items()}
        except LoratuiError as exc:
            report.notes.append(f"lora.target_modules not checked: {exc.message}")
    kinds = {}
    for key, shape in shapes.items():
        if key.endswith(".in_proj_weight"):
            kinds[key.removesuffix(".in_proj_weight")] = _MHA
        elif key.endswith(".weight") and len(shape) >= 2:
            kinds[key.removesuffix(".weight")] = "Conv" if len(shape) > 2 else "Linear"
    return kinds


def adapter_bytes(spec, info: EncoderInfo | None) -> int | None:
    """The LoRA weights and the head in fp32, from the weights' headers; None when they are not local."""
    if info is None:
        return None
    count = lora_parameter_count(info.folder, "", spec.lora.target_modules, spec.lora.rank)
    if count is None:
        return None
    hidden = info.config.get("hidden_size") or 0
    return (count + (hidden + 1) * max(2, len(spec.data.labels))) * 4


def check_rows(section, rows, report, *, images: bool) -> None:
    found, problems = labels.resolve(section, rows)
    report.errors.extend(labels.text_problems(section, rows) + problems)
    if found:
        names = ", ".join(found.names[:SHOWN_CLASSES]) + (" ..." if len(found.names) > SHOWN_CLASSES else "")
        report.notes.append(f"split {section.split}: {len(found.names)} classes: {names}")
