"""Checkpoints that survive a crash at any moment.

Each is written to a temporary folder, flushed to disk, renamed into place, and only then marked with a
COMPLETE file. Older checkpoints are pruned after that, so a limit of 1 never leaves zero valid ones.
A checkpoint holds the LoRA weights, the optimizer, scheduler (and fp16 scaler) states, the RNG states of
every process, and the data position; loading any part that fails raises, never passes silently.
"""

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine import faults
from engine.errors import LoratuiError
from engine.rundir import COMPLETE, RunDir, fsync_dir, write_atomic


@dataclass
class Position:
    """Where training stands: optimizer steps done, the epoch, and batches of it already consumed."""

    step: int = 0
    epoch: int = 0
    batches: int = 0
    nan_skipped: int = 0


class NonFiniteWeights(LoratuiError):
    pass


def save_safetensors(tensors: dict, path: Path | str, metadata: dict[str, str] | None = None) -> None:
    """Atomically write tensors, refusing any that hold NaN or inf."""
    path = Path(path)
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise NonFiniteWeights(f"refusing to save {path.name}: {len(bad)} tensors hold NaN or inf (e.g. {bad[0]})",
                               hint="the previous checkpoint is kept; lower train.learning_rate or use mixed precision bf16")
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
    _fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def save(run: RunDir, position: Position, accelerator, task, optimizer, scheduler, limit: int, spec_hash: str) -> Path:
    final = run.checkpoint(position.step)
    tmp = run.checkpoints / f".tmp-{final.name}"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _torch_save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    if main:
        save_safetensors(task.lora_state(), tmp / "lora.safetensors")
        _torch_save(optimizer.state_dict(), tmp / "optimizer.pt")
        _torch_save(scheduler.state_dict(), tmp / "scheduler.pt")
        if accelerator.scaler is not None:
            _torch_save(accelerator.scaler.state_dict(), tmp / "scaler.pt")
        state = {**asdict(position), "num_processes": accelerator.num_processes, "spec_hash": spec_hash}
        write_atomic(tmp / "state.json", json.dumps(state))
    accelerator.wait_for_everyone()
    if main:
        _discard(final)  # a torn attempt at this same step, left by a crash
        os.rename(tmp, final)
        fsync_dir(run.checkpoints)
        faults.kill_if_due("KILL_IN_CHECKPOINT", position.step)
        write_atomic(final / COMPLETE, "")
        fsync_dir(final)
        prune(run, limit)
    accelerator.wait_for_everyone()
    return final


def prune(run: RunDir, limit: int) -> None:
    """Drop incomplete checkpoints and, beyond `limit`, the oldest complete ones."""
    complete, incomplete = run.list_checkpoints()
    doomed = incomplete + ([path for _, path in complete[:-limit]] if limit else [])
    for path in doomed:
        _discard(path)


def _discard(path: Path) -> None:
    # The marker goes first: a crash mid-delete must not leave a half-deleted folder that claims completeness.
    (path / COMPLETE).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def resolve(run: RunDir, value: str, log) -> Path | None:
    """The checkpoint that `resume_from_checkpoint` names, or None to start fresh."""
    if not value:
        return None
    complete, incomplete = run.list_checkpoints()
    if value != "latest":
        path = Path(value).expanduser()
        if not (path / COMPLETE).is_file():
            raise LoratuiError(f"train.resume_from_checkpoint: {path} is not a complete checkpoint",
                               hint='use "latest", or a checkpoints/checkpoint-NNNNNN folder holding COMPLETE')
        return path
    newest = complete[-1][0] if complete else -1
    for path in incomplete:
        if not path.name.startswith(".tmp-") or int(path.name.rsplit("-", 1)[1]) > newest:
            log("warning", f"skipping incomplete checkpoint {path.name} (the run died while writing it)")
    return complete[-1][1] if complete else None


def load(path: Path, accelerator, task, optimizer, scheduler) -> Position:
    state = _part(path, "state.json", lambda p: json.loads(p.read_text()))
    if state["num_processes"] != accelerator.num_processes:
        raise LoratuiError(f"checkpoint {path.name} was made by {state['num_processes']} processes, this run has "
                           f"{accelerator.num_processes}", hint="resume with the same launch.num_processes")
    device = accelerator.device
    task.load_lora_state(_part(path, "lora.safetensors", lambda p: load_file(p, device=str(device))))
    optimizer.load_state_dict(_part(path, "optimizer.pt", lambda p: _torch_load(p, device)))
    scheduler.load_state_dict(_part(path, "scheduler.pt", lambda p: _torch_load(p, device)))
    if accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(_part(path, "scaler.pt", lambda p: _torch_load(p, device)))
    _set_rng_state(_part(path, f"rng-{accelerator.process_index}.pt", lambda p: _torch_load(p, "cpu")))
    return Position(**{k: state[k] for k in Position.__dataclass_fields__})


def _part(path: Path, name: str, loader):
    try:
        return loader(path / name)
    except LoratuiError:
        raise
    except Exception as exc:
        raise LoratuiError(f"checkpoint {path.name}: {name} does not load ({type(exc).__name__}: {exc})",
                           hint="resume from an earlier checkpoint: set train.resume_from_checkpoint to its folder") \
            from None


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                    cached], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_save(obj, path: Path) -> None:
    with open(path, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _torch_load(path: Path, device):
    return torch.load(path, map_location=device, weights_only=True)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
