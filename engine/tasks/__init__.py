"""Tasks: what differs between kinds of LoRA training. A task is one package, engine/tasks/<task>/:

  spec.py       SPEC, the task's spec class: its [data] columns, its [lora] and [train] fields, its own
                sections. No torch: `loratui spec`, preflight and the dashboard read it.
  preflight.py  check_model(model, values, report, offline_ok), check_rows(section, rows, report, images=...) and
                adapter_bytes(spec, info): what can be checked before any model loads. No torch.
  trainer.py    Trainer(spec, accelerator, rows, log): models, LoRA, examples, loss, evaluation, saving,
                samples; the Trainer protocol below, all the training loop talks to.
  estimate.py   count_parameters(folder, spec) and memory_bytes(spec, counts): what a run would cost.
  predict.py    (tasks whose adapters are tried on inputs) load and predict; preview.py (optional) for
                `loratui data preview`.
  __init__.py   register_task(Task(...)): everything else about the task (engine.tasks.registry), its families
                included. No torch.

Adding a task is adding its package: the packages here are found and registered on import; nothing else keeps a
list of tasks.
"""

import pkgutil
from importlib import import_module
from pathlib import Path
from typing import NamedTuple, Protocol

from engine.errors import LoratuiError
from engine.tasks import registry

for _found in pkgutil.iter_modules(__path__):
    if _found.ispkg:
        import_module(f"{__name__}.{_found.name}")

TASKS = tuple(t.name for t in registry.tasks())
DEFAULT_TASK = TASKS[0]


def _part(task: str, part: str):
    return registry.task(task).part(part)


def spec_module(task: str):
    """The task's spec module: SPEC, its spec class (a subclass of engine.spec.Spec); FAMILIES, the model
    families it trains; template(family, model, data), the values `loratui spec new` starts from."""
    return _part(task, "spec")


def spec_model(task: str):
    return spec_module(task).SPEC


def predictor(task: str):
    """The task's predict module, for a task whose adapters `loratui gen` tries on inputs: load(base, adapter)
    gives (PeftModel, its tokenizer or image processor); predict(...) what the adapter says of an input."""
    return _part(task, "predict")


def previewer(task: str):
    """The task's preview module, for `loratui data preview`: preview(spec, count) shows its first rows as training
    sees them."""
    try:
        return _part(task, "preview")
    except ModuleNotFoundError as exc:
        if exc.name != f"{registry.task(task).package}.preview":
            raise
        have = [t.name for t in registry.tasks() if _has_part(t, "preview")]
        raise LoratuiError(f"task: {task} has no data preview", hint="data preview shows the tokens a language "
                           f"model trains on (tasks: {', '.join(have)})") from None


def _has_part(task: registry.Task, part: str) -> bool:
    from importlib.util import find_spec

    return find_spec(f"{task.package}.{part}") is not None


def preflight(task: str):
    """The module whose check_model(...) and check_rows(...) add the task's problems to a Report, and whose
    adapter_bytes(spec, info) sizes its adapter."""
    return _part(task, "preflight")


class Sample(NamedTuple):
    """A validation output a task saved: its file, the prompt, and the text itself when it is text."""

    path: Path
    prompt: str
    text: str | None = None


class Trainer(Protocol):
    family: str
    dataset: object  # a torch Dataset indexed by the (epoch, row) keys of engine.data.EpochOrder
    sample_schedule: tuple[int, int] | None  # sample every (steps, epochs), 0 for never; None: no samples
    varying_lengths: bool  # batches differ in shape (unpacked text): compiled once for any length

    def trainable_modules(self) -> list:
        """The modules holding LoRA weights, to pass through accelerator.prepare."""

    def use_prepared(self, modules: list) -> None:
        """Take back the prepared (possibly DDP-wrapped) modules, in the same order."""

    def parameters(self) -> list:
        """The LoRA parameters, the only ones the optimizer holds."""

    def collate(self, examples: list[dict]) -> dict: ...

    def loss(self, batch: dict, generator) -> object:
        """The scalar training loss of one micro-batch; every random draw comes from `generator`."""

    def lora_state(self) -> dict:
        """LoRA tensors by name, for checkpoints."""

    def load_lora_state(self, state: dict) -> None:
        """Put checkpointed LoRA tensors back; raises if any is missing or unexpected."""

    def adapter_metadata(self) -> dict[str, str]:
        """What the task adds to the adapter's header (the loop adds base model, steps, run id...)."""

    def save_adapter(self, folder: Path, metadata: dict[str, str]) -> Path:
        """Write the adapter in the format stock loaders read; returns its path (a file or a folder)."""

    def sample(self, step: int, folder: Path) -> list[Sample]:
        """Validation outputs saved under `folder`; none when the spec asks for none."""

    # Evaluation ([eval]): the loop runs eval_step on every process over its share of the eval rows, gathers
    # the outputs with accelerator.gather_for_metrics and hands the whole set to metrics().
    def eval_examples(self, rows) -> object:
        """A Dataset of the eval rows, indexed by (0, row) keys as the training examples are."""

    def eval_step(self, batch: dict) -> dict:
        """Per-example tensors of one batch, first dimension the batch: e.g. {"loss", "pred", "label"}."""

    def metrics(self, outputs: dict) -> dict[str, float]:
        """The metrics of the whole eval set from the gathered (concatenated) eval_step outputs."""


def load_task(spec, accelerator, rows, log) -> Trainer:
    return _part(spec.task, "trainer").Trainer(spec, accelerator, rows, log)
