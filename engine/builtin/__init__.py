"""Built-in tiny models and datasets, referenced as "builtin:NAME" and built on first use.

Each is built deterministically into builtin_cache()/NAME in the standard folder format. Importing this
module stays cheap: torch, diffusers and transformers load only when something is built.
"""

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from engine.atomic import staged_folder
from engine.errors import LoratuiError
from engine.home import builtin_cache
from engine.quiet import hide_torchvision_fallback
from engine.tasks import registry

PREFIX = "builtin:"
MARKER = ".loratui-built"
# Bump when any recipe changes, so folders built by older code are rebuilt.
RECIPE_VERSION = 2


@dataclass(frozen=True)
class _Builtin:
    kind: str
    family: str | None  # a model's is what engine.model_kind reads from it once built (a test holds them equal)
    task: str  # the task that registers it (a dataset's is the task it trains)
    summary: str
    builder: str  # "module:function" in this package
    trained: bool


# Each task registers its built-ins (engine.tasks.registry).
_BUILTINS = {name: _Builtin(b.kind, b.family, task.name, b.summary, b.builder, b.trained)
             for task in registry.tasks() for name, b in task.builtins.items()}

# Builds share torch's global RNG, so two at once in one process would not be reproducible.
_build_lock = threading.Lock()


def names() -> list[str]:
    return sorted(_BUILTINS)


def describe() -> list[dict]:
    """One entry per built-in; `task` of a dataset is the task it trains."""
    cache = builtin_cache()
    return [
        {
            "name": name,
            "kind": spec.kind,
            "family": spec.family,
            "task": spec.task,
            "summary": spec.summary,
            "trained": spec.trained,
            "built": _is_built(cache / name, name),
        }
        for name, spec in sorted(_BUILTINS.items())
    ]


def is_builtin(ref: str) -> bool:
    return ref.startswith(PREFIX)


def strip(ref: str) -> str:
    return ref.removeprefix(PREFIX)


def path(ref: str) -> Path:
    """The built folder for `ref`, building it first if needed."""
    name = strip(ref)
    if name not in _BUILTINS:
        raise LoratuiError(
            f"unknown built-in '{PREFIX}{name}'",
            hint="available: " + ", ".join(PREFIX + n for n in names()),
        )
    folder = builtin_cache() / name
    if not _is_built(folder, name):
        with _build_lock:
            if not _is_built(folder, name):
                _build(name, folder)
    return folder


def resolve(ref: str) -> str:
    return str(path(ref)) if is_builtin(ref) else ref


def _stamp(name: str) -> str:
    return f"{name} recipe {RECIPE_VERSION}\n"


def _is_built(folder: Path, name: str) -> bool:
    try:
        return (folder / MARKER).read_text() == _stamp(name)
    except OSError:
        return False


def _build(name: str, folder: Path) -> None:
    """Build in a hidden sibling, mark it complete, then rename it into place in one step."""
    module, function = _BUILTINS[name].builder.split(":")
    hide_torchvision_fallback()
    with staged_folder(folder) as tmp:
        getattr(import_module(f"{__name__}.{module}"), function)(tmp)
        (tmp / MARKER).write_text(_stamp(name))
        if folder.exists() and not _is_built(folder, name):
            _discard(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process got there first; its build is byte-identical to ours.
            if not _is_built(folder, name):
                raise


def _discard(folder: Path) -> None:
    """Move a stale or half-copied folder out of the way; another process may be doing the same."""
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.stale.", dir=folder.parent))
    try:
        os.rename(folder, aside / folder.name)
    except FileNotFoundError:
        pass
    shutil.rmtree(aside, ignore_errors=True)
