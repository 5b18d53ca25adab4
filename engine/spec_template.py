"""Starting points for a spec: values per model family, and the commented TOML that `loratui spec new` prints.

No torch here (the dashboard's form calls these).
"""

import tomli_w

from engine.errors import LoratuiError
from engine.spec import field_docs
from engine.tasks import DEFAULT_TASK, TASKS, spec_model, spec_module


def template_values(task: str = DEFAULT_TASK, family: str | None = None, model: str = "", data: str = "") -> dict:
    """A complete, valid spec of `task` as a dict, with defaults suited to the model family; with no model, one
    that trains the task's built-ins offline. The task's spec module says what those are."""
    if task not in TASKS:
        raise LoratuiError(f"unknown task '{task}'", hint="tasks: " + ", ".join(TASKS))
    return spec_model(task).model_validate(spec_module(task).template(family, model, data)).model_dump()


def template_toml(task: str = DEFAULT_TASK, family: str | None = None, model: str = "", data: str = "") -> str:
    """The same values as TOML, each field preceded by its description and allowed values."""
    return commented_toml(template_values(task, family, model, data))


def commented_toml(values: dict, title: str = "loratui run spec") -> str:
    """A spec's values (Spec.model_dump()) as TOML, each field preceded by its description and allowed values."""
    model = spec_model(values.get("task", DEFAULT_TASK))
    docs = field_docs(model)
    lines = [f"# {title}. Validate with `loratui spec validate FILE`, run with `loratui run --spec FILE`.", ""]
    sections = []
    for key, value in values.items():
        if isinstance(value, dict):
            sections.append(key)
            continue
        lines += _commented(key, value, docs[key])
    for section in sections:
        lines += ["", f"[{section}]  # {model.model_fields[section].description}"]
        for key, value in values[section].items():
            lines += _commented(key, value, docs[section][key])
    return "\n".join(lines) + "\n"


def _commented(key: str, value, doc: dict) -> list[str]:
    note = doc["description"]
    if doc["allowed"]:
        note += " (allowed: " + ", ".join(repr(a) if a == "" else str(a) for a in doc["allowed"]) + ")"
    return [f"# {note}", tomli_w.dumps({key: value}).rstrip("\n")]
