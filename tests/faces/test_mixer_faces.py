"""The mixer for every registered task: generate shows the form the task is tried with (its TryForm) and the
result as the task gives it; adapters of different models are refused; an operation that cannot run says why."""

import sqlite3

import pytest
from homes import inline
from registry_runs import TASKS
from textual.widgets import ContentSwitcher, Input
from tui.conftest import until

from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.app import LoratuiApp
from loratui.library.picks import check_mix
from loratui.screens.mixer import MixerScreen

pytestmark = pytest.mark.slow
JOB_S = 120  # the first job starts the library worker and loads the base


def _rows(home) -> dict[str, dict]:
    from loratui.db.library import connect
    from loratui.library.adapters import list_adapters

    db = connect(home / "library.db")
    try:
        return {row["name"]: row for row in list_adapters(db)}
    finally:
        db.conn.close()


def _inputs(task: str, home) -> dict[str, str]:
    """What a person types into the task's form (the fields of loratui/widgets/mixer_form.py)."""
    kind = registry.task(task).adapters.try_form.kind
    if kind == "segment":
        from engine import builtin

        image = next((builtin.path("builtin:shapes-masks") / "test" / "images").glob("*.png"))
        return {"image": str(image), "mask-out": str(home / "mask.png")}
    return {"image": {"prompt": "a red circle", "seed": "3", "steps": "2", "size": "32x32"},
            "text": {"text-prompt": "Describe a red circle.", "max-tokens": "8"},
            "classify": {"text": "the food was delightful"}}[kind]


def _notes(app) -> list[str]:
    return [note.message for note in app._notifications]


@pytest.mark.parametrize("task", TASKS)
async def test_generate_shows_the_tasks_form_and_its_result(task, task_home):
    home = task_home(task)
    kind = registry.task(task).adapters.try_form.kind
    app = LoratuiApp(screen="library")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = MixerScreen([_rows(home)[f"{task}-a"]], "generate")
        app.push_screen(screen)
        await pilot.pause()
        assert screen.query_one(ContentSwitcher).current == kind
        fields = _inputs(task, home)
        assert screen.focused is screen.query_one(f"#mix-{next(iter(fields))}", Input)  # what to type first
        for name, value in fields.items():
            screen.query_one(f"#mix-{name}", Input).value = value
        await pilot.press("ctrl+g")
        await until(pilot, lambda: screen.busy, timeout=5)
        await until(pilot, lambda: not screen.busy, timeout=JOB_S)
        assert not [n for n in _notes(app) if "error" in n or "failed" in n], _notes(app)
        with sqlite3.connect(home / "library.db") as db:
            generation, text, path = db.execute("SELECT id, output_text, path FROM generations").fetchone()
        pane = screen.query_one("#mixer-image")
        assert pane.caption.startswith(f"generate #{generation}") and "None" not in pane.caption
        if kind in ("image", "segment"):
            assert path and pane.query("#pane-image")  # the image, or the mask over the image
        else:
            assert text and not pane.query("#pane-image")
            shown = text.split(", ")[0].rsplit(" ", 1)[0] if kind == "classify" else text
            assert shown in pane.caption  # the completion, or the likeliest class with its probability


async def test_adapters_of_different_models_are_refused(task_home, trained):
    home = task_home(TASKS[0])
    other = trained["adapters"][TASKS[-1]][0]["path"]
    assert inline(home, "library", "import", other, "--name", "other").returncode == 0
    rows = _rows(home)
    with pytest.raises(LoratuiError, match="for different models"):
        check_mix([rows[f"{TASKS[0]}-a"], rows["other"]])
    app = LoratuiApp(screen="library")
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.screen.query("#adapters-table") and app.screen.current_row() is not None)
        library = app.screen
        library.marked = {row["id"]: row for row in (rows[f"{TASKS[0]}-a"], rows["other"])}
        await pilot.press("g")
        await pilot.pause()
        assert app.screen is library and "for different models" in _notes(app)[-1]


@pytest.mark.parametrize("task", TASKS)
async def test_an_operation_that_cannot_run_says_why(task, task_home):
    home = task_home(task)
    app = LoratuiApp(screen="library")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = MixerScreen([_rows(home)[f"{task}-a"]], "combine")
        app.push_screen(screen)
        await pilot.pause()
        assert screen.focused is screen.query_one("#mix-name", Input)  # the combine form starts at the name
        await pilot.press("ctrl+g")
        assert not screen.busy and "combine makes one adapter of two or more (1 marked)" in _notes(app)[-1]
        screen.adapters = list(_rows(home).values())  # both marked now; still no name
        await pilot.press("ctrl+g")
        note = _notes(app)[-1]
        assert "name: empty" in note and note.count("hint:") == 1
        await pilot.press(*"both")  # typing lands in the focused name field
        assert screen.query_one("#mix-name", Input).value == "both"
        await pilot.press("tab")
        assert screen.focused.id == "mix-method"
