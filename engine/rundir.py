"""A run folder and what lives in it; no torch (the supervisor and the dashboard use it too).

runs/<run_id>/
  run_id                             the id library.db gave the run (the folder name may differ)
  spec.toml                          the validated spec
  events.jsonl                       the event stream (main training process only)
  preflight.json                     rows to skip, found by preflight
  checkpoints/checkpoint-000050/     complete once it holds COMPLETE
  samples/step-000100-0.png          validation images
  pytorch_lora_weights.safetensors   the adapter (a diffusers file, or peft's adapter_model.safetensors
                                     and adapter_config.json), as its task saves it
  run.log                            output of accelerate launch and the training processes
  pids/rank-0                        training process ids, for a clean stop
"""

import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import LoratuiError
from engine.home import runs_dir

COMPLETE = "COMPLETE"
ID_FILE = "run_id"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class RunDir:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        """The id recorded in the folder; a folder made before ids were recorded is named after its id."""
        try:
            return (self.path / ID_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return self.path.name

    spec = property(lambda self: self.path / "spec.toml")
    events = property(lambda self: self.path / "events.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    samples = property(lambda self: self.path / "samples")
    log = property(lambda self: self.path / "run.log")
    preflight = property(lambda self: self.path / "preflight.json")
    pids = property(lambda self: self.path / "pids")

    def create(self, spec_toml: str) -> "RunDir":
        for folder in (self.path, self.checkpoints, self.samples, self.pids):
            folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.spec, spec_toml)
        self.events.touch()
        return self

    def claim(self, run_id: str) -> None:
        """Record the run's id in the folder; the file is created exclusively, so a second claim fails."""
        try:
            fd = os.open(self.path / ID_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise LoratuiError(f"output.dir {self.path} is in use by another run",
                               hint="give each run its own output.dir, or leave it empty") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(run_id)
            handle.flush()
            os.fsync(handle.fileno())

    def release(self) -> None:
        """Undo claim(), for a run that could not be recorded."""
        (self.path / ID_FILE).unlink(missing_ok=True)

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
        return list(self.worker_ranks().values())

    def worker_ranks(self) -> dict[int, int]:
        """Process id by rank, of the training processes that have announced themselves."""
        ranks = {}
        for entry in sorted(self.pids.glob("rank-*")) if self.pids.is_dir() else []:
            try:
                ranks[int(entry.name.removeprefix("rank-"))] = int(entry.read_text())
            except (OSError, ValueError):
                continue
        return ranks

    def clear_pids(self) -> None:
        for entry in self.pids.glob("rank-*") if self.pids.is_dir() else []:
            entry.unlink(missing_ok=True)

    def write_preflight(self, skip_rows: list[int], notes: list[str]) -> None:
        """What preflight found that training needs: the rows to skip (every machine must skip the same)."""
        write_atomic(self.preflight, json.dumps({"skip_rows": skip_rows, "notes": notes}))

    def skip_rows(self) -> list[int]:
        try:
            return json.loads(self.preflight.read_text()).get("skip_rows", [])
        except FileNotFoundError:
            return []


def planned_run_dir(name: str, output_dir: str = "") -> RunDir:
    """Where a new run will go, for the checks made before it is claimed: `output_dir` (empty or absent),
    else a folder under runs/."""
    if output_dir:
        return RunDir(_empty_output_dir(output_dir))
    return RunDir(runs_dir() / name)


def claim_run_dir(name: str, output_dir: str, taken: Callable[[str], bool]) -> RunDir:
    """A fresh folder that is this run's alone, holding the run's id: `output_dir`, else runs/<id>.

    The id is <name>-<time>, suffixed -2, -3, ... past those `taken` already, wherever the folder goes: the
    name the user gave names the run (and its adapter), never the folder's. The folder is claimed exclusively
    (a new folder, or the id file created with O_EXCL), so two processes never share one."""
    base = f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if output_dir:
        path = _empty_output_dir(output_dir)
        run_id = next(candidate for candidate in _suffixed(base) if not taken(candidate))
        path.mkdir(parents=True, exist_ok=True)
        RunDir(path).claim(run_id)
        return RunDir(path)
    run_id = next(c for c in _suffixed(base) if not taken(c) and _made(runs_dir() / c))
    RunDir(runs_dir() / run_id).claim(run_id)
    return RunDir(runs_dir() / run_id)


def _made(path: Path) -> bool:
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True


def _suffixed(base: str) -> Iterator[str]:
    yield base
    for n in itertools.count(2):
        yield f"{base}-{n}"


def _empty_output_dir(output_dir: str) -> Path:
    path = Path(output_dir).expanduser().resolve()
    if path.exists() and any(path.iterdir()):
        raise LoratuiError(f"output.dir {path} is not empty",
                           hint='empty it, choose another folder, or set train.resume_from_checkpoint = "latest"')
    return path

