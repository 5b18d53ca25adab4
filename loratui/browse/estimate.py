"""What a run would cost, before it starts: optimizer steps and epochs, and (from the task's estimate module,
engine/tasks/<task>/estimate.py) trainable parameters and rough memory.

Parameters are counted on the model built from its config files under accelerate's init_empty_weights, so no
weights are read or allocated. init_empty_weights patches torch.nn.Module for the whole process, and the
imports are heavy: the dashboard asks its quick worker process (loratui.browse.questions), never itself.
"""

import math
from pathlib import Path

from engine.tasks import DEFAULT_TASK, registry
from loratui.browse import local
from loratui.browse.network import hub_errors, quiet, state
from loratui.library.requests import Estimate


def split_rows(split: str, counts: dict[str, int | None]) -> int | None:
    """Rows a split expression such as train, train[:500] or train[10%:]+test selects; None when unknown."""
    from datasets import ReadInstruction

    try:
        known = {name: int(n) for name, n in counts.items() if n is not None}
        parts = ReadInstruction.from_spec(split).to_absolute(known)
    except (ValueError, KeyError):
        return None
    return sum(p.to - p.from_ for p in parts)


def schedule(
    rows: int, batch_size: int, accumulation: int, processes: int, max_steps: int, num_epochs: int
) -> tuple[int, int, int]:
    """(optimizer steps, epochs, steps per epoch) the way the training loop counts them: each process
    gets ceil(rows / processes) rows, in batches (the last may be short), `accumulation` batches a step."""
    batches = math.ceil(math.ceil(rows / processes) / batch_size)
    per_epoch = max(1, math.ceil(batches / accumulation))
    if max_steps:
        return max_steps, math.ceil(max_steps / per_epoch), per_epoch
    return num_epochs * per_epoch, num_epochs, per_epoch


def estimate(spec, split_counts: dict[str, int | None] | None) -> Estimate:
    """The whole estimate for a valid engine.spec.Spec; `split_counts` are the dataset's rows per split."""
    result = Estimate()
    processes = spec.launch.num_processes or 1
    if not spec.launch.num_processes:
        result.notes.append("assuming 1 process (num_processes is 0: the accelerate config decides)")
    rows = split_rows(spec.data.split, split_counts) if split_counts else None
    if rows is not None and spec.data.max_samples:
        rows = min(rows, spec.data.max_samples)
    result.rows = rows
    t = spec.train
    if rows:
        result.steps, result.epochs, result.steps_per_epoch = schedule(
            rows, t.batch_size, t.gradient_accumulation_steps, processes, t.max_steps, t.num_epochs
        )
    else:
        result.steps = t.max_steps or None
        result.notes.append("row count unknown: epochs cannot be worked out yet")
    folder = config_folder(spec.model.pretrained, spec.model.revision, spec.task)
    counts = count_parameters(folder, spec)
    result.trainable_params = counts["trainable"]
    result.base_params = sum(counts["base"].values())
    result.memory_bytes = memory_bytes(spec, counts)
    return result


def config_folder(ref: str, revision: str = "main", task: str = DEFAULT_TASK) -> Path:
    """A folder holding the model's config files (those the task's estimate reads): a built-in, a local folder, the
    HF cache, or the Hub (config files only, a few KB)."""
    from engine import builtin

    if builtin.is_builtin(ref):
        return builtin.path(ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    rules = registry.task(task).part("estimate")
    cached = local.cached_snapshot(ref)
    if cached is not None and rules.configs_complete(cached):
        return cached
    from huggingface_hub import snapshot_download

    with quiet(), hub_errors(ref):
        return Path(
            snapshot_download(ref, revision=revision, allow_patterns=rules.CONFIG_FILES, endpoint=state().endpoint)
        )


def count_parameters(folder: Path, spec) -> dict:
    """The task's count (engine/tasks/<task>/estimate.py): {"trainable": ..., "base": {part: parameters}, ...}."""
    return registry.task(spec.task).part("estimate").count_parameters(folder, spec)


def memory_bytes(spec, counts: dict) -> int:
    """The task's rule of thumb for the memory a run takes, from count_parameters' counts."""
    return registry.task(spec.task).part("estimate").memory_bytes(spec, counts)
