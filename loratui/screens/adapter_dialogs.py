"""The Library's dialogs: edit (tags, trigger words, weight, notes), rename, remove (forget only, or forget and
delete the files), export (folder and format) and import (a path that completes, or a Hub id). Each returns a
typed request (library_changes), or None when cancelled; the screen applies it in a worker."""

import math
import re
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from engine.adapters.export import FORMATS as EXPORT_FORMATS
from loratui.screens.library_changes import AdapterEdit, Export, Import, Removal, Rename
from loratui.widgets.path_suggester import PathSuggester


class FormDialog(ModalScreen):
    """A titled form with OK and Cancel; `answer()` reads the fields or raises ValueError with what is wrong."""

    CSS_PATH = "adapter_dialogs.tcss"
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), Binding("ctrl+s", "submit", "OK")]
    OK = "Save"

    def __init__(self, title: str) -> None:
        super().__init__()
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.heading, id="dialog-title")
            yield from self.fields()
            yield Static(id="dialog-problem")
            with Horizontal(id="buttons"):
                yield Button(f"{self.OK} (ctrl+s)", variant="primary", id="ok")
                yield Button("Cancel (esc)", id="cancel")

    def fields(self) -> ComposeResult:
        yield from ()

    def answer(self):
        raise NotImplementedError

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        try:
            answer = self.answer()
        except ValueError as problem:
            self.query_one("#dialog-problem", Static).update(str(problem))
            return
        self.dismiss(answer)

    @on(Button.Pressed, "#cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()


def _words(text: str, separators: str) -> list[str]:
    return [word.strip() for word in re.split(f"[{separators}]", text) if word.strip()]


class EditDialog(FormDialog):
    def __init__(self, row: dict) -> None:
        super().__init__(f"Edit #{row['id']} {row['name']}")
        self.row = row

    def fields(self) -> ComposeResult:
        row = self.row
        yield Label("Tags (single words, space or comma between)")
        yield Input(" ".join(row["tags"]), id="tags")
        yield Label("Trigger words (comma between)")
        yield Input(", ".join(row["trigger_words"]), id="trigger-words")
        yield Label("Preferred weight")
        yield Input(f"{row['preferred_weight']:g}", id="weight")
        yield Label("Notes")
        yield TextArea(row.get("notes") or "", id="notes", compact=True)

    def answer(self) -> AdapterEdit:
        try:
            weight = float(self.value("weight"))
        except ValueError:
            raise ValueError(f"weight: '{self.value('weight')}' is not a number (e.g. 0.8)") from None
        if not math.isfinite(weight):
            raise ValueError(f"weight: {weight} is not a finite number")
        return AdapterEdit(self.row, _words(self.value("tags"), r"\s,"), _words(self.value("trigger-words"), ","), weight,
                           self.query_one("#notes", TextArea).text.strip())


class RenameDialog(FormDialog):
    OK = "Rename"

    def __init__(self, row: dict) -> None:
        super().__init__(f"Rename #{row['id']} {row['name']}")
        self.row = row

    def fields(self) -> ComposeResult:
        yield Input(self.row["name"], id="name")

    def answer(self) -> Rename:
        if not self.value("name"):
            raise ValueError("the name is empty")
        return Rename(self.row, self.value("name"))


class ExportDialog(FormDialog):
    OK = "Export"

    def __init__(self, row: dict, folder: str) -> None:
        super().__init__(f"Export #{row['id']} {row['name']}")
        self.row, self.folder = row, folder

    def fields(self) -> ComposeResult:
        yield Label("To the folder (right arrow takes the completion)")
        yield Input(self.folder, id="folder", suggester=PathSuggester())
        fmt = self.row["format"] if self.row["format"] in EXPORT_FORMATS else EXPORT_FORMATS[0]
        yield Select([(f, f) for f in EXPORT_FORMATS], value=fmt, allow_blank=False, id="format")
        yield Checkbox("replace a file that is there", id="overwrite")

    def answer(self) -> Export:
        if not self.value("folder"):
            raise ValueError("choose a folder")
        return Export(self.row, self.value("folder"), self.query_one("#format", Select).value,
                            self.query_one("#overwrite", Checkbox).value)


class ImportDialog(FormDialog):
    OK = "Import"

    def fields(self) -> ComposeResult:
        yield Label("A .safetensors file, a PEFT folder, or a Hub id (owner/name)")
        yield Input(id="ref", suggester=PathSuggester(), placeholder=str(Path.cwd()) + "/")
        yield Label("Name (optional)")
        yield Input(id="name")
        yield Checkbox("link: keep the file where it is (a local file only)", id="link")

    def answer(self) -> Import:
        if not self.value("ref"):
            raise ValueError("give a file, a folder or a Hub id")
        return Import(self.value("ref"), self.value("name") or None, self.query_one("#link", Checkbox).value)


class RemoveDialog(ModalScreen[Removal | None]):
    """Forget the entry only, or forget it and delete its files; the question says which files those are."""

    CSS_PATH = "adapter_dialogs.tcss"
    BINDINGS = [Binding("f", "answer('forget')", "Forget only"), Binding("d", "answer('delete')", "Delete files"),
                Binding("escape,n", "answer(None)", "Cancel")]

    def __init__(self, row: dict) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row
        if row.get("storage") == "link":
            files = f"Its file is yours and stays where it is: {row['path']}"
        else:
            files = f"Forget only keeps its files; delete removes them from the library store: {row['path']}"
        with Vertical(id="dialog"):
            yield Static(f"Remove #{row['id']} {row['name']} from the library?\n{files}", id="dialog-title")
            with Horizontal(id="buttons"):
                yield Button("Forget only (f)", id="forget")
                yield Button("Forget and delete files (d)", variant="error", id="delete",
                             disabled=row.get("storage") == "link")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        if answer == "delete" and self.row.get("storage") == "link":
            return
        self.dismiss(None if answer is None else Removal(self.row, delete_files=answer == "delete"))
