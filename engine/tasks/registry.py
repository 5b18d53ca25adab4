"""The registry of tasks and their model families: every fact that differs between kinds of LoRA training, kept by
the task that owns it. Each task package registers one Task in its __init__ (register_task, in the manner of peft's
register_peft_method); every other module asks here instead of naming a task or a family. No torch, no pydantic:
the dashboard reads the registry on its first frame.

A Family is registered within its task: how it is recognised (model configs, a Hub repo's files, an adapter file's
keys), its pipeline or model class, its default LoRA targets and whether its blocks take per-block scales.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from engine.errors import LoratuiError


class ModelConfigs(NamedTuple):
    """A model's config files, as read from a folder or a Hub repo: model_index.json (a diffusers pipeline), its
    UNet's or transformer's config, and config.json (a transformers model)."""

    model_index: dict | None = None
    config: dict | None = None
    denoiser: dict | None = None


class AdapterEvidence(NamedTuple):
    """What an adapter file says of itself, headers only: its metadata, tensor shapes by key, LoRA modules as
    (component, dotted name, key of the down matrix), and a PEFT adapter_config.json when there is one."""

    metadata: dict
    shapes: dict
    modules: list
    config: dict | None


DECLARED, BY_KEYS = 2, 1  # how sure a family's adapter check is: the file says so, or its keys and shapes show it


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    model_class: str  # the diffusers pipeline or the transformers auto class that loads it
    recognise: Callable[[ModelConfigs], str | None]  # its description when the configs are of this family
    adapter_match: Callable[[AdapterEvidence], int] = lambda evidence: 0  # 0, BY_KEYS or DECLARED
    targets: tuple[str, ...] = ()  # default LoRA target modules
    blocks: bool = False  # per-block scales address its down/mid/up blocks
    text_encoders: tuple[str, ...] = ()  # a pipeline's text-encoder components (kohya numbers them when two)
    base_model: str = ""  # the Hub model `spec new --family NAME` starts from
    resolution: int = 0  # the image size it was trained at (text-to-image)
    # SDXL-style micro-conditioning: the denoiser also takes the last text encoder's pooled embedding and the
    # images' size and crop as time ids (text-to-image)
    added_conditions: bool = False
    vae_float32: bool = False  # its VAE overflows in half precision, so it stays in float32 (text-to-image)
    hub_files: tuple[str, ...] = ("model_index.json", "config.json")  # what a Hub repo is judged by


@dataclass(frozen=True)
class Builtin:
    kind: str  # "model" or "dataset"
    summary: str
    builder: str  # "module:function" in engine.builtin
    family: str | None = None  # a model's, as its family recognises it once built (a test holds them equal)
    trained: bool = False  # its build trains it: minutes, not seconds


@dataclass(frozen=True)
class TryForm:
    """How a face tries a task's adapters: the input the form asks for, the flag `loratui gen` takes it by, and
    what comes back."""

    kind: str  # "image", "text", "classify" or "segment"
    flag: str  # --prompt, --text, --image
    shows: str  # what the result is, for help texts


@dataclass(frozen=True)
class AdapterSupport:
    format: str  # "diffusers" (a LoRA file) or "peft" (an adapter folder)
    try_form: TryForm
    session: str | None = None  # engine.adapters.load's kind of warm session, for tasks `gen` loads there
    combine: tuple[str, ...] | None = None  # the engine.adapters.combine methods it takes; None: every one
    own_head: bool = False  # it trains a head of its own: merged alone at one weight, combined only when heads agree
    export: tuple[str, ...] = ()  # engine.adapters.export formats it converts to
    extra_tensors: bool = False  # its files hold tensors beyond LoRA pairs (heads, embeddings) by design


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    package: str  # the module path of its package
    order: int  # where it stands in lists (the default task first)
    families: tuple[Family, ...]  # the families it owns
    adapters: AdapterSupport
    hub_tags: tuple[str, ...] = ()  # Hub pipeline tags of models it trains
    also_trains: tuple[str, ...] = ()  # other tasks' families it trains too (a decoder with a classification head)
    builtins: dict[str, Builtin] = field(default_factory=dict)
    distributed: tuple[str, ...] = ("ddp",)
    estimate: bool = True  # its package has estimate.py: count_parameters(folder, spec), memory_bytes(spec, counts)

    def trains(self, family: str | None) -> bool:
        return family in self.family_names() or family in self.also_trains

    def family_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def part(self, name: str):
        """One of its modules: spec, preflight, trainer, predict, preview, estimate."""
        from importlib import import_module

        return import_module(f"{self.package}.{name}")


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    taken = {f.name for t in _TASKS.values() for f in t.families}
    clash = [f.name for f in task.families if f.name in taken]
    if task.name in _TASKS:
        raise ValueError(f"task {task.name} is registered twice")
    if clash:
        raise ValueError(f"task {task.name} registers families {', '.join(clash)}, which another task has")
    _TASKS[task.name] = task
    return task


def tasks() -> list[Task]:
    return sorted(_TASKS.values(), key=lambda t: t.order)


def task(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise LoratuiError(f"task: unknown task '{name}'", hint="allowed: " + ", ".join(t.name for t in tasks())) \
            from None


def families() -> list[Family]:
    return [f for t in tasks() for f in t.families]


def family(name: str | None) -> Family | None:
    return next((f for f in families() if f.name == name), None)


def family_task(name: str | None) -> Task | None:
    """The task that owns a family (the task of an adapter whose file does not say)."""
    return next((t for t in tasks() if name in t.family_names()), None)


def adapter_task(name: str | None, family: str | None) -> Task | None:
    """The task of a library adapter: the one its file records, else its family's."""
    return _TASKS.get(name) if name in _TASKS else family_task(family)


def hub_tag_tasks() -> dict[str, str]:
    """A Hub pipeline tag -> the task that trains models so tagged."""
    return {tag: t.name for t in tasks() for tag in t.hub_tags}
