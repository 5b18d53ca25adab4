"""A run-settings form generated from the pydantic schema of the spec's task (engine.tasks.spec_model).

One group per section, one row per field with its description, allowed values and default; every change is
validated with engine.spec.spec_errors, so the messages are those `loratui spec validate` prints, shown
under the field they name. Rows that differ from the schema's defaults are marked. A section shown collapsed
mounts its rows when first opened (the form appears sooner); until then its rows answer with their values.
"""

import tomllib
import types
import typing
from typing import Literal

import tomli_w
from pydantic import BaseModel
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Collapsible, Input, Label, Select, Static, Switch

from engine.spec import spec_errors
from engine.tasks import DEFAULT_TASK, spec_model

OPEN_SECTIONS = ("model", "data", "lora", "train")
TOP = "run"  # the group holding the spec's top-level fields (name, task)


def schema_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """(path, pydantic FieldInfo) for every leaf field, sections in schema order."""
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += schema_fields(annotation, (*prefix, name))
        else:
            found.append(((*prefix, name), field))
    return found


def default_of(field) -> object:
    return None if field.is_required() else field.get_default(call_default_factory=True)


def _dom_id(path: tuple[str, ...]) -> str:
    return "-".join(path)


class FieldRow(Vertical):
    """A field's name, editor, help line and error line."""

    def __init__(self, path: tuple[str, ...], field, value) -> None:
        super().__init__(id=f"field-{_dom_id(path)}", classes="field-row")
        self.path = path
        self.field = field
        self.annotation = field.annotation
        self.value = value
        self.shown: tuple[bool, str] = (False, "")
        self._editor = None

    @property
    def kind(self) -> str:
        origin = typing.get_origin(self.annotation)
        if self.annotation is bool:
            return "bool"
        if origin is Literal:
            return "choice"
        if origin is list or (origin in (typing.Union, types.UnionType)
                              and any(typing.get_origin(a) is list for a in typing.get_args(self.annotation))):
            return "list"  # target_modules: names, or the one word "all-linear"
        if origin is dict:
            return "table"
        return {int: "int", float: "float"}.get(self.annotation, "text")

    def compose(self) -> ComposeResult:
        editor_id = f"edit-{_dom_id(self.path)}"
        with Horizontal(classes="field-line"):
            yield Label(self.path[-1], classes="field-name")
            if self.kind == "bool":
                yield Switch(value=bool(self.value), id=editor_id)
            elif self.kind == "choice":
                choices = typing.get_args(self.annotation)
                yield Select([(str(c) or "(empty)", c) for c in choices], value=self.value, allow_blank=False,
                             id=editor_id, compact=True)
            else:
                yield Input(self.text_of(self.value), id=editor_id, compact=True)
        yield Static(self.help_text(), classes="field-help", markup=False)
        yield Static("", classes="field-error", markup=False)

    def on_mount(self) -> None:
        if self.shown != (False, ""):
            self._paint()  # shown while its section was still collapsed

    def help_text(self) -> str:
        text = self.field.description or ""
        allowed = typing.get_args(self.annotation) if self.kind == "choice" else ()
        if allowed:
            text += " (allowed: " + ", ".join(repr(a) if a == "" else str(a) for a in allowed) + ")"
        default = default_of(self.field)
        if default is not None:
            text += f"  [default: {self.text_of(default) or repr(default)}]"
        return text

    def text_of(self, value) -> str:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, dict):  # a TOML inline table, as the spec file writes it
            return ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
        return "" if value is None else str(value)

    def current(self) -> object:
        """The value typed as the schema wants it: the editor's once mounted, else the one given, read as if
        typed (so a section not opened yet gives what it would give opened)."""
        if self.is_mounted:
            self._editor = self._editor or self.editor  # values() reads every row on each keystroke
            return self.read(self._editor.value)
        return bool(self.value) if self.kind == "bool" else self.read(
            self.value if self.kind == "choice" else self.text_of(self.value))

    def read(self, typed) -> object:
        """An editor's value typed as the schema wants it; text that does not parse is passed on as text,
        so validation names it the way `loratui spec validate` does."""
        if self.kind in ("bool", "choice"):
            return typed
        text = typed.strip()
        if self.kind == "list":
            parts = [part.strip() for part in text.split(",") if part.strip()]
            return parts[0] if parts == ["all-linear"] else parts
        if self.kind == "table":
            try:
                return tomllib.loads(f"value = {{{text}}}")["value"]
            except tomllib.TOMLDecodeError:
                return text
        for kind, parse in (("int", int), ("float", float)):
            if self.kind == kind:
                try:
                    return parse(text)
                except ValueError:
                    return text
        return typed

    @property
    def editor(self):
        return self.query_one(f"#edit-{_dom_id(self.path)}")

    def show(self, changed: bool, error: str) -> None:
        if (changed, error) == self.shown:
            return  # most rows stay as they were: updating them all made typing lag
        self.shown = (changed, error)
        if self.is_mounted:
            self._paint()

    def _paint(self) -> None:
        changed, error = self.shown
        self.set_class(changed, "-changed")
        self.query_one(".field-name", Label).update(("● " if changed else "") + self.path[-1])
        line = self.query_one(".field-error", Static)
        line.update(error)
        line.display = bool(error)
        self.set_class(bool(error), "-bad")


class SpecForm(VerticalScroll):
    class Changed(Message):
        """The form's values (a spec dict), their problems and what differs from the defaults."""

        def __init__(self, values: dict, errors: list[str], changes: list[str]) -> None:
            super().__init__()
            self.values = values
            self.errors = errors
            self.changes = changes

    def __init__(self, values: dict, *, extra_errors=None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial = values
        self.model = spec_model(values.get("task", DEFAULT_TASK))
        self.extra_errors = extra_errors or (lambda values: [])
        self.rows: dict[tuple[str, ...], FieldRow] = {}
        self.external: list[str] = []  # problems found by a deeper check of the current values
        self.validated: dict | None = None  # the values as last validated

    def compose(self) -> ComposeResult:
        groups: dict[str, list[tuple[tuple[str, ...], object]]] = {}
        for path, field in schema_fields(self.model):
            groups.setdefault(_group(path), []).append((path, field))
        for group, fields in groups.items():
            title = group if group == TOP else f"{group}: {self.model.model_fields[group].description}"
            collapsed = group not in (TOP, *OPEN_SECTIONS)
            with Collapsible(title=title, collapsed=collapsed, id=f"group-{group}"):
                for path, field in fields:
                    row = FieldRow(path, field, _get(self.initial, path, default_of(field)))
                    self.rows[path] = row
                    if not collapsed:
                        yield row

    def on_mount(self) -> None:
        self.revalidate()

    @on(Collapsible.Expanded)
    async def section_opened(self, event: Collapsible.Expanded) -> None:
        group = event.collapsible.id.removeprefix("group-")
        unmounted = [row for path, row in self.rows.items() if _group(path) == group and row.parent is None]
        if unmounted:
            await event.collapsible.query_one(Collapsible.Contents).mount_all(unmounted)

    def values(self) -> dict:
        values: dict = {}
        for path, row in self.rows.items():
            _set(values, path, row.current())
        return values

    def load(self, values: dict) -> list[str]:
        """Put a spec dict (say, from a TOML file) into the editors. Returns the problems of the dict as
        given, which include keys the schema lacks: the form cannot hold those, so they are dropped."""
        self.initial = values
        for path, row in self.rows.items():
            value = _get(values, path, default_of(row.field))
            if row.kind == "choice" and value not in typing.get_args(row.annotation):
                continue  # the editor cannot show it; the returned problems name it
            if not row.is_mounted:
                if row.kind != "bool" or isinstance(value, bool):
                    row.value = value  # its section shows it when opened
                continue
            widget = row.editor
            with self.prevent(Input.Changed, Switch.Changed, Select.Changed):
                if row.kind == "bool":
                    if isinstance(value, bool):
                        widget.value = value
                elif row.kind == "choice":
                    widget.value = value
                else:
                    widget.value = row.text_of(value)
        self.revalidate()
        return spec_errors(values)

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def edited(self, event: Message) -> None:
        event.stop()
        if self.values() != self.validated:  # an editor mounting (a section opened) says Changed too
            self.external = []  # they were about the values before this edit
        self.revalidate()

    def set_external(self, errors: list[str]) -> None:
        """Show problems a deeper check (model, dataset) found, under the fields they name."""
        self.external = errors
        self.revalidate()

    def revalidate(self) -> None:
        values = self.validated = self.values()
        errors = spec_errors(values)
        errors += [e for e in self.extra_errors(values) + self.external if e not in errors]
        by_field: dict[tuple[str, ...], list[str]] = {}
        for error in errors:
            where, _, what = error.partition(": ")
            by_field.setdefault(tuple(where.split(".")), []).append(what)
        changes = []
        for path, row in self.rows.items():
            value, default = _get(values, path, None), default_of(row.field)
            changed = default is not None and value != default
            if changed:
                shown_default = row.text_of(default) or repr(default)
                changes.append(f"{'.'.join(path)} = {row.text_of(value) or repr(value)} (default {shown_default})")
            row.show(changed, "\n".join(by_field.get(path, [])))
        self.post_message(self.Changed(values, errors, changes))


def _group(path: tuple[str, ...]) -> str:
    return path[0] if len(path) > 1 else TOP


def _get(values: dict, path: tuple[str, ...], default):
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _set(values: dict, path: tuple[str, ...], value) -> None:
    node = values
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value

