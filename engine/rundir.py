"""A run folder and what lives in it; no torch (the supervisor and the dashboard use it too).

runs/<run_id>/
  spec.toml                          the validated spec
  events.jsonl                       the event stream (main training process only)
  preflight.json                     rows to skip, found by preflight
  checkpoints/checkpoint-000050/     complete once it holds COMPLETE
  samples/step-000100-0.png          validation images
  pytorch_lora_weights.safetensors   the adapter
  run.log                            output of accelerate launch and the training processes
  pids/rank-0                        training process ids, for a clean stop
"""

import json
import os
import re
from datetime import datetime
from pathlib import Path

from engine.errors import LoratuiError
from engine.home import runs_dir

ADAPTER_FILE = "pytorch_lora_weights.safetensors"
COMPLETE = "COMPLETE"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class RunDir:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    spec = property(lambda self: self.path / "spec.toml")
    events = property(lambda self: self.path / "events.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    samples = property(lambda self: self.path / "samples")
    adapter = property(lambda self: self.path / ADAPTER_FILE)
    log = property(lambda self: self.path / "run.log")
    preflight = property(lambda self: self.path / "preflight.json")
    pids = property(lambda self: self.path / "pids")

    def create(self, spec_toml: str) -> "RunDir":
        for folder in (self.path, self.checkpoints, self.samples, self.pids):
            folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.spec, spec_toml)
        self.events.touch()
        return self

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"checkpoint-{step:06d}"

    def list_checkpoints(self) -> tuple[list[tuple[int, Path]], list[Path]]:
        """(complete checkpoints by step, incomplete ones): a checkpoint is complete once COMPLETE exists."""
        complete, incomplete = [], []
        if self.checkpoints.is_dir():
            for entry in self.checkpoints.iterdir():
                match = _CHECKPOINT.match(entry.name)
                if match and (entry / COMPLETE).is_file():
                    complete.append((int(match.group(1)), entry))
                elif match or entry.name.startswith(".tmp-"):
                    incomplete.append(entry)
        return sorted(complete), sorted(incomplete)

    def latest_checkpoint(self) -> Path | None:
        complete, _ = self.list_checkpoints()
        return complete[-1][1] if complete else None

    def write_pid(self, rank: int) -> None:
        self.pids.mkdir(exist_ok=True)
        write_atomic(self.pids / f"rank-{rank}", str(os.getpid()))

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in sorted(self.pids.glob("rank-*")) if self.pids.is_dir() else []:
            try:
                pids.append(int(entry.read_text()))
            except (OSError, ValueError):
                continue
        return pids

    def clear_pids(self) -> None:
        for entry in self.pids.glob("rank-*") if self.pids.is_dir() else []:
            entry.unlink(missing_ok=True)

    def skip_rows(self) -> list[int]:
        try:
            return json.loads(self.preflight.read_text()).get("skip_rows", [])
        except FileNotFoundError:
            return []


def new_run_dir(name: str, output_dir: str = "") -> RunDir:
    """A fresh folder: `output_dir` when given (it must be empty or absent), else runs/<name>-<timestamp>."""
    if output_dir:
        path = Path(output_dir).expanduser().resolve()
        if path.exists() and any(path.iterdir()):
            raise LoratuiError(f"output.dir {path} is not empty",
                               hint='empty it, choose another folder, or set train.resume_from_checkpoint = "latest"')
        return RunDir(path)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = runs_dir() / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return RunDir(path)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, fsync, rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
