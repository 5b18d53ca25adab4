"""Checkpoints that survive a crash at any moment.

Each is written to a temporary folder, flushed to disk, renamed into place, and only then marked with a
COMPLETE file. Older checkpoints are pruned after that, so a limit of 1 never leaves zero valid ones.
A checkpoint holds the LoRA weights, the optimizer, scheduler (and fp16 scaler) states, the RNG states of
every process, and the data position; loading any part that fails raises, never passes silently.

Only the main process reads and writes the folder (on several machines, the others may not even see it):
the other processes send their RNG states to it and get the checkpoint from it. The position is counted
in samples and the schedule in optimizer steps, so a checkpoint made by N processes resumes with M.
"""

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from safetensors.torch import load_file, save_file

from engine import faults, fsdp
from engine.atomic import fsync_dir, write_atomic
from engine.errors import LoratuiError
from engine.rundir import COMPLETE, RunDir


@dataclass
class Position:
    """Where training stands: optimizer steps done, the epoch, and samples of it already consumed (by all
    processes together)."""

    step: int = 0
    epoch: int = 0
    samples: int = 0
    nan_skipped: int = 0


@dataclass
class Restored:
    position: Position
    scheduler: dict  # the schedule's state, its step counted in optimizer steps
    processes: int  # how many processes made the checkpoint


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
    rng = gather_object([_rng_state()]) if accelerator.num_processes > 1 else [_rng_state()]
    sharded = fsdp.sharded(accelerator)  # then gathering the weights and optimizer state takes every process
    lora = fsdp.lora_state_all_ranks(task) if sharded else None
    optimizer_state = fsdp.optimizer_state_all_ranks(task, optimizer) if sharded else None
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for rank, state in enumerate(rng):
            _torch_save(state, tmp / f"rng-{rank}.pt")
        save_safetensors(lora if sharded else task.lora_state(), tmp / "lora.safetensors")
        _torch_save(optimizer_state if sharded else optimizer.state_dict(), tmp / "optimizer.pt")
        _torch_save(scheduler.state_dict(), tmp / "scheduler.pt")
        if accelerator.scaler is not None:
            _torch_save(accelerator.scaler.state_dict(), tmp / "scaler.pt")
        state = {**asdict(position), "num_processes": accelerator.num_processes, "spec_hash": spec_hash,
                 "schedule_steps": "optimizer"}
        write_atomic(tmp / "state.json", json.dumps(state))
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


def find(run: RunDir, value: str, log, accelerator) -> Path | None:
    """The checkpoint to resume from, as the main process finds it, told to every process."""
    found = None
    if accelerator.is_main_process:
        try:
            found = resolve(run, value, log)
        except LoratuiError as exc:
            found = exc
    return _from_main(found, accelerator)


def _from_main(value, accelerator):
    """The main process's value (or error, raised) in every process."""
    if accelerator.num_processes > 1:
        sent = [value]
        broadcast_object_list(sent)
        value = sent[0]
    if isinstance(value, LoratuiError):
        raise value
    return value


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


def load(path: Path, accelerator, task, optimizer, batch_size: int) -> Restored:
    """Restore the checkpoint into every process; the main one reads it and sends it to the others."""
    parts = None
    if accelerator.is_main_process:
        try:
            parts = _read(path, accelerator.scaler is not None)
        except LoratuiError as exc:
            parts = exc
    parts = _from_main(parts, accelerator)
    state = parts["state"]
    device = accelerator.device
    task.load_lora_state({k: v.to(device) for k, v in parts["lora"].items()})
    if fsdp.sharded(accelerator) or _by_name(parts["optimizer"]):  # saved sharded: keyed by parameter name
        fsdp.load_optimizer_state_all_ranks(task, optimizer, parts["optimizer"])
    else:
        optimizer.load_state_dict(parts["optimizer"])
    if accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(parts["scaler"])
    rank = accelerator.process_index
    saved_by = state["num_processes"]
    scheduler = parts["scheduler"]
    if state.get("schedule_steps") != "optimizer":  # older checkpoints counted one step per process
        scheduler = {**scheduler, "last_epoch": scheduler["last_epoch"] // saved_by,
                     "_step_count": scheduler["last_epoch"] // saved_by + 1}
    if rank < len(parts["rng"]):
        _set_rng_state(parts["rng"][rank])
    else:  # more processes than saved it: a fresh stream of this rank's own
        _seed_all(state["step"] * 4096 + rank)
    position = Position(**{k: state[k] for k in Position.__dataclass_fields__ if k in state})
    if "batches" in state:  # older checkpoints counted each process's batches
        position.samples = state["batches"] * batch_size * saved_by
    return Restored(position, scheduler, saved_by)


def _by_name(optimizer_state: dict) -> bool:
    return any(isinstance(key, str) for key in optimizer_state.get("state", {}))


def _read(path: Path, scaler: bool) -> dict:
    state = _part(path, "state.json", lambda p: json.loads(p.read_text()))
    ranks = range(state["num_processes"])
    return {"state": state, "lora": _part(path, "lora.safetensors", load_file),
            "optimizer": _part(path, "optimizer.pt", lambda p: _torch_load(p, "cpu")),
            "scheduler": _part(path, "scheduler.pt", lambda p: _torch_load(p, "cpu")),
            "scaler": _part(path, "scaler.pt", lambda p: _torch_load(p, "cpu")) if scaler else None,
            "rng": [_part(path, f"rng-{rank}.pt", lambda p: _torch_load(p, "cpu")) for rank in ranks]}


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


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
