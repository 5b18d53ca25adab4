"""Starting points for a spec: values per model family, and the commented TOML that `loratui spec new` prints.

No torch here (the dashboard's form calls these).
"""

import tomli_w

from engine.errors import LoratuiError
from engine.spec import TASKS, Spec, field_docs

FAMILIES = ("sd1", "sd2", "sdxl")
_BASE_MODELS = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}
_RESOLUTIONS = {"sd1": 512, "sd2": 768, "sdxl": 1024}
# The built-ins train in seconds on a CPU: small images, and enough steps to see the loss fall.
_TINY = {"tiny-sd": "sd1", "tiny-sdxl": "sdxl"}


def template_values(task: str = "text-to-image", family: str | None = None, model: str = "", data: str = "") -> dict:
    """A complete, valid spec as a dict, with defaults suited to the family (sd1, sd2, sdxl).

    With no family and no model, the spec trains builtin:tiny-sd on builtin:shapes, which runs offline."""
    if task not in TASKS:
        raise LoratuiError(f"unknown task '{task}'", hint="tasks: " + ", ".join(TASKS))
    if family is not None and family not in FAMILIES:
        raise LoratuiError(f"unknown model family '{family}'", hint="families: " + ", ".join(FAMILIES))
    if not model:
        model = _BASE_MODELS[family] if family else "builtin:tiny-sd"
    tiny = model.removeprefix("builtin:") if model.startswith("builtin:") else ""
    family = family or _TINY.get(tiny, "sd1")
    small = bool(tiny)
    train = {
        "resolution": 64 if small else _RESOLUTIONS[family],
        "center_crop": True,
        "random_flip": True,
        "batch_size": 4 if small else 1,
        "gradient_accumulation_steps": 1 if small else 4,
        "max_steps": 200 if small else 2000,
        "learning_rate": 1e-4,
        "lr_scheduler": "cosine",
        "checkpointing_steps": 50 if small else 500,
        "gradient_checkpointing": family == "sdxl" and not small,
    }
    values = {
        "name": "shapes-demo" if small else f"{family}-lora",
        "task": task,
        "model": {"pretrained": model},
        "data": {"source": data or ("builtin:shapes" if small else "path/to/imagefolder")},
        "lora": {"train_text_encoder": False},
        "train": train,
        "validation": {"prompt": "a red circle" if small else "", "every_steps": 100 if small else 500},
    }
    return Spec.model_validate(values).model_dump()


def template_toml(task: str = "text-to-image", family: str | None = None, model: str = "", data: str = "") -> str:
    """The same values as TOML, each field preceded by its description and allowed values."""
    return commented_toml(template_values(task, family, model, data))


def commented_toml(values: dict, title: str = "loratui run spec") -> str:
    """A spec's values (Spec.model_dump()) as TOML, each field preceded by its description and allowed values."""
    docs = field_docs()
    lines = [f"# {title}. Validate with `loratui spec validate FILE`, run with `loratui run --spec FILE`.", ""]
    sections = []
    for key, value in values.items():
        if isinstance(value, dict):
            sections.append(key)
            continue
        lines += _commented(key, value, docs[key])
    for section in sections:
        lines += ["", f"[{section}]  # {Spec.model_fields[section].description}"]
        for key, value in values[section].items():
            lines += _commented(key, value, docs[section][key])
    return "\n".join(lines) + "\n"


def _commented(key: str, value, doc: dict) -> list[str]:
    note = doc["description"]
    if doc["allowed"]:
        note += " (allowed: " + ", ".join(repr(a) if a == "" else str(a) for a in doc["allowed"]) + ")"
    return [f"# {note}", tomli_w.dumps({key: value}).rstrip("\n")]
