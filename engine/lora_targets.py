"""Which layers a [lora] section's target_modules would wrap, decided from the weights' headers alone (no torch,
nothing loaded), with peft's matching rules: a name matches a module that is it or ends in ".name"."""

from pathlib import Path

from engine.model_index import header_shapes

SHOWN_NAMES = 12


def linear_layers(folder: Path) -> list[str]:
    """Modules of a model folder's safetensors files whose weight is a matrix (Linear layers), by full name."""
    names = []
    for file in sorted(folder.glob("*.safetensors")):
        names += [key.removesuffix(".weight") for key, shape in header_shapes(file).items()
                  if key.endswith(".weight") and len(shape) == 2]
    return sorted(set(names))


def matches(target: str, module: str) -> bool:
    return module == target or module.endswith("." + target)


def unmatched_problem(field: str, targets, layers: list[str], model: str) -> str | None:
    """A one-line problem when a target matches no Linear layer ("all-linear" needs at least one)."""
    if not layers:
        return None  # nothing to judge by (no local weights)
    missing = [] if targets == "all-linear" else [t for t in targets if not any(matches(t, m) for m in layers)]
    if not missing:
        return None
    short = sorted({_short(m) for m in layers})
    shown = ", ".join(short[:SHOWN_NAMES]) + (f" and {len(short) - SHOWN_NAMES} more" if len(short) > SHOWN_NAMES else "")
    names = ", ".join(repr(t) for t in missing)
    return f"{field}: {names} match{'es' if len(missing) == 1 else ''} no layer of {model} (its layers: {shown})"


def _short(module: str) -> str:
    """The name a target would use: the last part, with its parent when the last is an index (to_out.0)."""
    parts = module.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]
