"""Merge weighted adapters into their base and write a full model folder that stock from_pretrained loads.

Diffusion pipelines: set_adapters, fuse_lora, unload_lora_weights, save_pretrained.
Transformers models: merge_and_unload, save_pretrained (with the tokenizer, the adapter's own when it saved one).
"""

import os
import shutil
import tempfile
from pathlib import Path

from engine.adapters.load import DIFFUSION, Session
from engine.errors import LoratuiError


def check_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LoratuiError(f"{out} already exists and is not empty", hint="choose a new --out folder")
    return out


def merge(
    base: str, adapters: list[tuple[str, Path, float | dict]], out: Path, *, device: str | None = None
) -> Path:
    """Merge (label, path, weight or per-block scales) adapters into `base`; write the model to `out`.

    The folder appears complete or not at all.
    """
    out = check_out(out)
    if not adapters:
        raise LoratuiError("nothing to merge", hint="give at least one --adapter NAME:WEIGHT")
    session = Session(base, device=device)
    for label, path, _ in adapters:
        session.add(label, path)
    session.activate({label: weight for label, _, weight in adapters})
    merged = fuse(session)
    if session.stop_ids:  # the end-of-turn token a template adds stops the merged model's generate too
        merged.generation_config.eos_token_id = session.stop_ids
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        if session.tokenizer is not None:  # the adapter's own when it has one: its chat template and tokens
            session.tokenizer.save_pretrained(str(tmp))
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def merge_task(task: str, base: str, adapter: Path, weight: float, out: Path) -> Path:
    """Merge one adapter of a task with a head of its own (classification, segmentation) into `base`, its head
    included: a folder the task's stock Auto class loads, with the tokenizer or image processor beside it."""
    from engine.tasks import predictor

    out = check_out(out)
    model, preprocessor = predictor(task).load(base, adapter)
    for module in model.modules():  # the LoRA update at `weight`; a head trained in full is taken whole
        if isinstance(getattr(module, "scaling", None), dict):
            module.scaling = {name: scale * weight for name, scale in module.scaling.items()}
    merged = model.merge_and_unload()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        preprocessor.save_pretrained(str(tmp))
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


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
