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


def build_apart(ref: str, timeout_s: float) -> None:
    """Build `ref` if needed in a child process, keeping torch out of the caller (the dashboard), and the build's
    output off its terminal. A failure is a LoratuiError naming the built-in."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_build_for_parent, args=(ref, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise LoratuiError(f"building {ref} took over {timeout_s:.0f} s",
                               hint=f"try `loratui builtin path {ref}` in a terminal")
        said = receiver.recv()
    except EOFError:
        child.join()
        said = (f"building {ref} failed: its process died (exit code {child.exitcode})",
                f"`loratui builtin path {ref}` says more")
    finally:
        if child.is_alive():
            child.kill()
        child.join()
    if said:
        raise LoratuiError(*said)


def _build_for_parent(ref: str, sender) -> None:
    """build_apart's child: builds, then sends None, or the (message, hint) of the failure."""
    from engine.errors import first_line, save_traceback

    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    try:
        path(ref)
        sender.send(None)
    except LoratuiError as exc:
        sender.send((f"building {ref} failed: {exc.message}", exc.hint))
    except Exception as exc:
        sender.send((f"building {ref} failed: {first_line(exc)}",
                     f"this is a bug; the traceback is in {save_traceback(exc)}"))


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
