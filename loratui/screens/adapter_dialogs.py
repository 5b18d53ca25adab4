"""The Library's dialogs: edit (tags, trigger words, weight, notes), rename, remove (the entry and its stored
copy, or the entry only), export (folder and format) and import (a path that completes, or a Hub id). Each
turns its fields into a typed request (library_changes) and applies it while it stays open (WorkingDialog):
it closes with the Change once done, or shows what went wrong with the fields as typed. Tab visits every
field in the order shown; a short terminal scrolls the fields, never the buttons."""

import math
import re
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from engine.adapters.export import FORMATS as EXPORT_FORMATS
from loratui.screens.dialog import WorkingDialog
from loratui.screens.library_changes import AdapterEdit, Export, Import, Removal, Rename
from loratui.widgets.path_suggester import PathSuggester


class LibraryDialog(WorkingDialog):
    """Applies a library_changes request to the library."""

    CSS_PATH = "adapter_dialogs.tcss"

    def perform(self, request):
        from loratui.watch import library

        with library() as db:
            return request.apply(db)


class FormDialog(LibraryDialog):
    """A titled form with OK and Cancel; `answer()` reads the fields or raises ValueError with what is wrong."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), Binding("ctrl+s", "submit", "OK")]
    OK = "Save"

    def __init__(self, title: str) -> None:
        super().__init__()
        self.heading = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", can_focus=False):  # Tab goes to the fields
            yield Static(self.heading, id="dialog-title", markup=False)
            yield from self.fields()
            with Vertical(id="dialog-foot"):  # docked: always in sight, however many fields scroll above
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
            request = self.answer()
        except ValueError as problem:
            self.show_problem(str(problem))
            return
        self.run(request)

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


class RemoveDialog(LibraryDialog):
    """Remove the entry and its stored copy (kept while another entry uses it), or the entry only; a linked
    file is the user's and always stays. The question says which file that is."""

    BINDINGS = [Binding("d", "answer('delete')", "Remove"), Binding("f", "answer('forget')", "Keep the copy"),
                Binding("escape,n", "dismiss_none", "Cancel")]

    def __init__(self, row: dict) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row
        linked = row.get("storage") == "link"
        if linked:
            files = f"Its file is yours and stays where it is: {row['path']}"
        else:
            files = f"Its stored copy is deleted, unless another entry uses it: {row['path']}"
        with VerticalScroll(id="dialog", can_focus=False):  # Tab goes to the fields
            yield Static(f"Remove #{row['id']} {row['name']} from the library?\n{files}", id="dialog-title",
                         markup=False)
            with Vertical(id="dialog-foot"):
                yield Static(id="dialog-problem")
                with Horizontal(id="buttons"):
                    yield Button("Remove (d)", variant="error", id="delete")
                    if not linked:
                        yield Button("Keep the stored copy (f)", id="forget")
                    yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # Enter right after Delete removes nothing

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.action_answer(event.button.id)

    def action_answer(self, answer: str) -> None:
        if answer == "forget" and self.row.get("storage") == "link":
            answer = "delete"  # the same thing for a linked file: nothing of the user's is deleted
        self.run(Removal(self.row, delete_files=answer == "delete"))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
