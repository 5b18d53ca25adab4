"""Evaluation during training, the same for every task: which rows, when, on every process, gathered.

The eval rows are a split of the dataset ([eval] split) or a share of the training rows held out with the
seed ([eval] split_ratio). Every process evaluates its shard; accelerate's gather_for_metrics puts the
per-example outputs back together, without the padding it added, so the metrics of N processes are those of
one. The task turns the outputs into metrics; with [eval] keep_best, the adapter of the best evaluation
so far is kept in the run folder's best/.
"""

import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from engine import fsdp
from engine.data import load_rows
from engine.errors import LoratuiError


def eval_split(spec, rows):
    """(training rows, eval rows or None)."""
    section = spec.eval
    if section.split:
        return rows, load_rows(spec.data.model_copy(update={"split": section.split, "max_samples": section.max_samples}),
                               spec.train.seed)
    if not section.split_ratio:
        return rows, None
    order = np.random.default_rng(spec.train.seed).permutation(len(rows))
    held = max(1, round(len(rows) * section.split_ratio))
    if held >= len(rows):
        raise LoratuiError(f"eval.split_ratio: {section.split_ratio} of {len(rows)} rows leaves none to train on",
                           hint="lower eval.split_ratio, or name an eval.split")
    chosen = sorted(order[:held][: section.max_samples or None].tolist())
    return rows.select(sorted(order[held:].tolist())), rows.select(chosen)


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


class Evaluation:
    def __init__(self, spec, task, rows, accelerator, emit, best: Path, save) -> None:
        self.spec, self.task, self.accelerator, self.emit = spec, task, accelerator, emit
        self.best_folder, self.save = best, save  # save(folder, step) writes the adapter there
        loader = DataLoader(task.eval_examples(rows), batch_size=spec.eval.batch_size or spec.train.batch_size,
                            sampler=[(0, row) for row in range(len(rows))], collate_fn=task.collate)
        self.loader = accelerator.prepare(loader)
        self.base: dict | None = None
        self.best: float | None = None

    def run(self, position) -> dict[str, float]:
        """Evaluate now (every process must call it); emits an `eval` event and returns the metrics."""
        modules = self.task.trainable_modules()
        modes = [module.training for module in modules]
        for module in modules:
            module.eval()
        outputs: dict[str, list] = {}
        try:
            with torch.no_grad():
                for batch in self.loader:
                    gathered = self.accelerator.gather_for_metrics(self.task.eval_step(batch))
                    for key, value in gathered.items():
                        outputs.setdefault(key, []).append(value.detach().cpu())
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.train(mode)
        metrics = self.task.metrics({key: torch.cat(values) for key, values in outputs.items()})
        if position.step == 0:
            self.base = metrics
        best = self._keep_best(metrics, position.step)
        self.emit("eval", step=position.step, epoch=position.epoch, metrics=metrics, best=best)
        return metrics

    def _keep_best(self, metrics: dict[str, float], step: int) -> bool:
        name = self.spec.eval.keep_best
        if not name or step == 0:
            return False
        if name not in metrics:
            raise LoratuiError(f"eval.keep_best: the {self.spec.task} task reports no metric '{name}' "
                               f"(its metrics: {', '.join(metrics)})", hint="name one of its metrics")
        value = metrics[name]
        if self.best is not None and (value >= self.best if lower_is_better(name) else value <= self.best):
            return False
        self.best = value
        main = self.accelerator.is_main_process
        # Written aside and renamed, so best/ is always one whole adapter.
        tmp = self.best_folder.with_name(f".{self.best_folder.name}.tmp")
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        if main or fsdp.sharded(self.accelerator):  # sharded weights are gathered from every process
            self.save(tmp, step)
        if main:
            shutil.rmtree(self.best_folder, ignore_errors=True)
            tmp.rename(self.best_folder)
        self.accelerator.wait_for_everyone()
        return True
