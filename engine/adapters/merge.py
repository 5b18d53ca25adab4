"""Merge weighted adapters into their base and write a full model folder that stock from_pretrained loads, or, for
a pipeline whose family has one, a single-file checkpoint (engine/tasks/<task>/single_file.py) as A1111 and ComfyUI
load them.

Diffusion pipelines: set_adapters, fuse_lora, unload_lora_weights, save_pretrained.
Transformers models: merge_and_unload, save_pretrained (with the tokenizer, the adapter's own when it saved one).
The weights are merged in float32 and saved in `dtype` when one is asked for. Whatever is written appears
complete or not at all; with force it replaces what is there, which is moved aside until the new one is whole.
"""

import json
import os
import secrets
from pathlib import Path

from engine.adapters.load import DIFFUSION, Session, base_kind
from engine.atomic import replace_folder, staged_folder
from engine.errors import LoratuiError

DTYPES = ("float16", "bfloat16", "float32")
SINGLE_FILE_SUFFIX = ".safetensors"


def check_out(out: Path, *, force: bool = False, single_file: bool = False) -> Path:
    """Where the merge goes: a new or empty folder (or, single_file, a new .safetensors file); force: one that is
    there may be replaced."""
    out = Path(out)
    replace = "pass --force to replace it"
    if single_file:
        if out.suffix != SINGLE_FILE_SUFFIX or out.is_dir():
            raise LoratuiError(f"--single-file {out}: a single-file checkpoint is a {SINGLE_FILE_SUFFIX} file",
                               hint=f"e.g. --single-file merged{SINGLE_FILE_SUFFIX}")
        if out.exists() and not force:
            raise LoratuiError(f"{out} already exists", hint=f"choose another file, or {replace}")
        return out
    if out.exists() and not out.is_dir():
        raise LoratuiError(f"{out} already exists and is a file, not a folder", hint="choose a new --out folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise LoratuiError(f"{out} already exists and is not empty", hint=f"choose a new --out folder, or {replace}")
    return out


def check_dtype(dtype: str | None):
    """The torch dtype to save in (None: as merged, float32)."""
    import torch

    if dtype is None:
        return None
    if dtype not in DTYPES:
        raise LoratuiError(f"--dtype {dtype} is not allowed (allowed: {', '.join(DTYPES)})")
    return getattr(torch, dtype)


def merge(base: str, adapters: list[tuple[str, Path, float | dict]], out: Path, *, device: str | None = None,
          force: bool = False, dtype: str | None = None, single_file: bool = False) -> Path:
    """Merge (label, path, weight or per-block scales) adapters into `base`; write the model to `out`: a folder,
    or with single_file one checkpoint file."""
    out = check_out(out, force=force, single_file=single_file)
    torch_dtype = check_dtype(dtype)
    if not adapters:
        raise LoratuiError("nothing to merge", hint="give at least one --adapter NAME:WEIGHT")
    if single_file and base_kind(base) != DIFFUSION:
        raise LoratuiError(f"--single-file: {base} is not a diffusion pipeline; its merge is a model folder that "
                           "from_pretrained loads", hint="merge to a folder with --out DIR")
    session = Session(base, device=device)
    layout = _single_file_layout(session.pipe) if single_file else None  # refused before anything is merged
    for label, path, _ in adapters:
        session.add(label, path)
    session.activate({label: weight for label, _, weight in adapters})
    merged = fuse(session)
    if torch_dtype is not None:
        merged.to(dtype=torch_dtype)
    if layout is not None:
        _write_file(layout(merged), out, [label for label, _, _ in adapters])
        return out
    if session.stop_ids:  # the end-of-turn token a template adds stops the merged model's generate too
        merged.generation_config.eos_token_id = session.stop_ids

    def write(folder: Path) -> None:
        merged.save_pretrained(str(folder), safe_serialization=True)
        if session.tokenizer is not None:  # the adapter's own when it has one: its chat template and tokens
            session.tokenizer.save_pretrained(str(folder))

    _write_folder(write, out)
    return out


def merge_task(task: str, base: str, adapter: Path, weight: float, out: Path, *, force: bool = False,
               dtype: str | None = None, single_file: bool = False) -> Path:
    """Merge one adapter of a task with a head of its own (classification, segmentation) into `base`, its head
    included: a folder the task's stock Auto class loads, with the tokenizer or image processor beside it."""
    from engine.tasks import predictor

    if single_file:
        raise LoratuiError(f"--single-file: a {task} adapter merges into a transformers model folder, its head "
                           "included; single-file checkpoints are for diffusion pipelines",
                           hint="merge to a folder with --out DIR")
    out = check_out(out, force=force)
    torch_dtype = check_dtype(dtype)
    model, preprocessor = predictor(task).load(base, adapter)
    for module in model.modules():  # the LoRA update at `weight`; a head trained in full is taken whole
        if isinstance(getattr(module, "scaling", None), dict):
            module.scaling = {name: scale * weight for name, scale in module.scaling.items()}
    merged = model.merge_and_unload()
    if torch_dtype is not None:
        merged.to(torch_dtype)

    def write(folder: Path) -> None:
        merged.save_pretrained(str(folder), safe_serialization=True)
        preprocessor.save_pretrained(str(folder))

    _write_folder(write, out)
    return out


def _write_folder(write, out: Path) -> None:
    """`write` fills a staged sibling; once it is whole it takes out's place (one already there, with --force,
    is deleted only after)."""
    try:
        with staged_folder(out) as tmp:
            write(tmp)
            replace_folder(tmp, out)
    except OSError as exc:
        raise _unwritten(out, exc) from exc


def _single_file_layout(pipe):
    """The pipeline's family's single-file writer (weights -> state dict), or a one-line refusal naming why."""
    from engine import model_kind
    from engine.tasks import registry

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    kind = model_kind.from_configs({"_class_name": type(pipe).__name__, **pipe.config}, None,
                                   dict(denoiser.config) if denoiser is not None else None)
    task = registry.task(kind.task) if kind.task else None
    module = None
    if task is not None:
        try:
            module = task.part("single_file")
        except ModuleNotFoundError as exc:
            if exc.name != f"{task.package}.single_file":
                raise
    what = kind.what or type(pipe).__name__
    if module is None:
        raise LoratuiError(f"--single-file: {what} has no single-file checkpoint layout loratui writes",
                           hint="merge to a folder with --out DIR (from_pretrained loads it)")
    module.check_family(kind.family, what)
    return lambda merged: module.state_dict(merged, kind.family)


def _write_file(weights: dict, out: Path, adapters: list[str]) -> None:
    """One safetensors file, written beside `out` and renamed over it once complete."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        save_file(weights, str(tmp), metadata={"format": "pt", "loratui.merged": json.dumps(adapters)})
        os.replace(tmp, out)
    except OSError as exc:
        raise _unwritten(out, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _unwritten(out: Path, exc: OSError) -> LoratuiError:
    return LoratuiError(f"could not write {out}: {exc.strerror or exc}; what was there is kept",
                        hint="check the free space and permissions of the folder it goes in")


def fuse(session: Session):
    """Bake the session's active adapters at their weights into the base; returns the plain model or pipeline.

    The session's adapters are gone afterwards: the base itself now carries them.
    """
    if session.kind == DIFFUSION:
        pipe = session.pipe
        pipe.fuse_lora(adapter_names=[session.internal_name(label) for label in session.active])
        pipe.unload_lora_weights()
        return pipe
    return session.model.merge_and_unload(
        adapter_names=[session.internal_name(label) for label in session.active]
    )
