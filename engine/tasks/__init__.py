"""Tasks: what differs between kinds of LoRA training, behind one small protocol.

The loop in engine/train.py only talks to a Task. Adding causal-LM training means adding
engine/tasks/causal_lm.py with the same methods and one line in TASKS, not threading `if task ==` through
the loop.
"""

from importlib import import_module
from pathlib import Path
from typing import Protocol

TASKS = {"text-to-image": "engine.tasks.text_to_image:TextToImage"}


class Task(Protocol):
    family: str
    dataset: object  # a torch Dataset indexed by the (epoch, row) keys of engine.data.EpochOrder

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

    def save_adapter(self, folder: Path, metadata: dict[str, str]) -> Path:
        """Write the adapter in the format stock loaders read; returns the file."""

    def sample(self, step: int, folder: Path) -> list[tuple[Path, str]]:
        """Validation outputs saved under `folder`: (file, prompt) pairs."""


def load_task(spec, accelerator, rows, log) -> Task:
    module, name = TASKS[spec.task].split(":")
    return getattr(import_module(module), name)(spec, accelerator, rows, log)
