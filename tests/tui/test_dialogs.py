"""Every dialog (each ModalScreen in loratui.screens): Tab visits every field in the order shown, and what is
typed lands in the field Tab reached; a failure keeps the dialog open, says what went wrong inside it, and
keeps every field as typed."""

import importlib
import pkgutil

import pytest
from textual.app import App
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, TextArea

import loratui.screens
from loratui.library import adapters
from loratui.screens.adapter_dialogs import EditDialog, ExportDialog, ImportDialog, RemoveDialog, RenameDialog
from loratui.screens.confirm import ConfirmScreen
from loratui.screens.new_run import NewRunScreen

from .conftest import until
from .library_seed import seed_library

FIELDS = (Input, Select, Button, Checkbox, TextArea)
ROW = {"id": 1, "name": "paper-cut", "tags": ["craft"], "trigger_words": ["pcut"], "preferred_weight": 0.8,
       "notes": "", "format": "kohya", "path": "/library/paper-cut.safetensors", "storage": "store"}
DIALOGS = {
    "ImportDialog": lambda: ImportDialog("Import an adapter"),
    "EditDialog": lambda: EditDialog(ROW),
    "RenameDialog": lambda: RenameDialog(ROW),
    "ExportDialog": lambda: ExportDialog(ROW, "/tmp/"),
    "RemoveDialog": lambda: RemoveDialog(ROW),
    "NewRunScreen": NewRunScreen,
    "ConfirmScreen": lambda: ConfirmScreen("Stop the run?", yes="Stop"),
}


def _dialog_classes() -> set[str]:
    """Every ModalScreen defined in loratui.screens that nothing else derives from: the dialogs users see."""
    for info in pkgutil.iter_modules(loratui.screens.__path__):
        importlib.import_module(f"loratui.screens.{info.name}")
    found, pending = set(), [ModalScreen]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if cls.__module__.startswith("loratui.") and not cls.__subclasses__():
                found.add(cls.__name__)
    return found


def test_every_dialog_is_driven_here():
    assert _dialog_classes() == set(DIALOGS)


class Host(App):
    def __init__(self, dialog, answered=None) -> None:
        super().__init__()
        self.dialog, self.answered = dialog, answered

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.answered)


def _fields(dialog) -> list:
    return [widget for widget in dialog.query("*") if isinstance(widget, FIELDS) and widget.focusable]


@pytest.mark.parametrize("name", sorted(DIALOGS))
async def test_tab_visits_every_field_in_order_and_typing_lands_there(name):
    app = Host(DIALOGS[name]())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog = app.screen
        fields = _fields(dialog)
        assert app.focused in fields, f"{name} starts on {app.focused!r}, not a field"
        start = fields.index(app.focused)
        visited = [app.focused]
        for _ in fields:
            await pilot.press("tab")
            await pilot.pause()
            visited.append(app.focused)
            assert dialog.region.contains_region(app.focused.region), f"{app.focused!r} is out of sight"
        assert visited == fields[start:] + fields[:start] + [fields[start]]
        await pilot.press("shift+tab")
        assert app.focused is fields[start - 1]

        inputs = [field for field in fields if isinstance(field, Input)]
        for number, field in enumerate(inputs):  # each reached by Tab alone, then typed into
            while app.focused is not field:
                await pilot.press("tab")
            await pilot.press("ctrl+u", *f"typed{number}")
        assert [field.value for field in inputs] == [f"typed{number}" for number in range(len(inputs))]


@pytest.fixture
def library(db, tmp_path):
    return seed_library(db, tmp_path / "files")


# Each case: the dialog, what is typed, the key that submits, what the failure says, and a correction that
# succeeds (the dialog then closes with its result), or None.
def _import(rows, db, tmp_path):
    return (ImportDialog("Import an adapter"), {"ref": str(tmp_path / "nowhere.safetensors"), "name": "mine"},
            "ctrl+s", "no such file or folder", {"ref": str(tmp_path / "files" / "ink-wash.safetensors")})


def _rename(rows, db, tmp_path):
    return RenameDialog(rows["ink-wash"]), {"name": "paper-cut"}, "enter", "already exists", {"name": "sumi-e"}


def _export(rows, db, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    return (ExportDialog(rows["paper-cut"], str(tmp_path / "a-file")), {}, "ctrl+s", "is a file, not a folder",
            {"folder": str(tmp_path / "out")})


def _edit(rows, db, tmp_path):
    return EditDialog(rows["ink-wash"]), {"weight": "heavy", "tags": "ink wet"}, "ctrl+s", "not a number", {
        "weight": "0.7"}


def _remove(rows, db, tmp_path):
    adapters.remove(db, rows["ink-wash"]["id"])  # removed from the shell meanwhile
    return RemoveDialog(rows["ink-wash"]), {}, "d", "unknown adapter", None


def _new_run(rows, db, tmp_path):
    (tmp_path / "run.toml").write_text('name = "mine"\n')
    return (NewRunScreen(), {"new-run-path": str(tmp_path / "missing.toml")}, "enter", "spec file not found",
            {"new-run-path": str(tmp_path / "run.toml")})


@pytest.mark.parametrize("case", [_import, _rename, _export, _edit, _remove, _new_run],
                         ids=lambda case: case.__name__.strip("_"))
async def test_a_failure_keeps_the_dialog_and_what_was_typed(library, db, tmp_path, case):
    dialog, typed, submit, failure, correction = case(library, db, tmp_path)
    results = []
    app = Host(dialog, results.append)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for field_id, text in typed.items():
            dialog.query_one(f"#{field_id}", Input).value = text
        if typed:
            dialog.query_one(f"#{next(iter(typed))}", Input).focus()
        before = {field.id: field.value for field in dialog.query(Input)}
        await pilot.press(submit)
        problem = dialog.query_one("#dialog-problem")
        await until(pilot, lambda: failure in str(problem.render()))
        assert app.screen is dialog and dialog.region.contains_region(problem.region)
        assert {field.id: field.value for field in dialog.query(Input)} == before
        assert not app._notifications and not results
        if correction:
            for field_id, text in correction.items():
                dialog.query_one(f"#{field_id}", Input).value = text
            await pilot.press("ctrl+s" if submit == "ctrl+s" else "enter")
            await until(pilot, lambda: results)
            assert app.screen is not dialog and results[0] is not None
