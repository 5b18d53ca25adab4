"""Starting points for a spec: values per model family, and the commented TOML that `loratui spec new` prints.

No torch here (the dashboard's form calls these).
"""

import tomli_w
from pydantic import BaseModel

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
    lines = [f"# {title}. Validate with `loratui spec validate FILE`, run with `loratui run --spec FILE`.", ""]
    return "\n".join(lines + _table("", values, model)[1:]) + "\n"


def _table(name: str, values: dict, model: type[BaseModel]) -> list[str]:
    """The fields of one table, then its nested tables ([lora.loftq]) each under its own header."""
    docs, nested, lines = field_docs(model), [], [""]
    for key, value in values.items():
        annotation = model.model_fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((key, annotation))
            continue
        lines += _commented(key, value, docs[key])
    for key, annotation in nested:
        path = f"{name}.{key}" if name else key
        lines += ["", f"[{path}]  # {model.model_fields[key].description}", *_table(path, values[key], annotation)[1:]]
    return lines


def _commented(key: str, value, doc: dict) -> list[str]:
    note = doc["description"]
    if doc["allowed"]:
        note += " (allowed: " + ", ".join(repr(a) if a == "" else str(a) for a in doc["allowed"]) + ")"
    if isinstance(value, dict):  # a table-valued field (rank_pattern) is written inline, in its place
        inner = ", ".join(tomli_w.dumps({k: v}).rstrip("\n") for k, v in value.items())
        return [f"# {note}", f"{tomli_w.dumps({key: 0}).split(' =')[0]} = {{{inner}}}"]
    return [f"# {note}", tomli_w.dumps({key: value}).rstrip("\n")]
