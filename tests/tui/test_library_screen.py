"""The Library screen on a small real library (tests/tui/library_seed.py): filter and facets, the detail pane,
edit, rename, remove, export, import, marks and the palette, each checked in library.db or on disk."""

import os
from pathlib import Path

import pytest
from safetensors.numpy import load_file
from textual import events
from textual.widgets import Input, OptionList, Select, Tree

from engine.adapters.inspect import inspect_file
from loratui.app import LoratuiApp
from loratui.library import adapters
from loratui.library.render import details
from loratui.screens.adapter_dialogs import EditDialog, ExportDialog, ImportDialog, RemoveDialog, RenameDialog
from loratui.screens.library import LibraryScreen
from loratui.widgets.adapter_detail import AdapterDetail
from loratui.widgets.adapter_table import AdapterTable
from loratui.widgets.charts import LossChart

from .conftest import until
from .library_seed import kohya_file, seed_chat_adapter, seed_library


@pytest.fixture
def seeded(db, tmp_path):
    return seed_library(db, tmp_path / "files")


def _names(screen) -> list[str]:
    table = screen.query_one(AdapterTable)
    return [table.get_row_at(i)[2] for i in range(table.row_count)]


async def _library(pilot, count: int) -> LibraryScreen:
    await pilot.press("4")
    screen = pilot.app.screen
    assert isinstance(screen, LibraryScreen)
    await until(pilot, lambda: screen.query_one(AdapterTable).row_count == count and screen.shown is not None)
    return screen


async def _cursor_on(pilot, screen, name: str) -> None:
    table = screen.query_one(AdapterTable)
    table.focus()
    table.move_cursor(row=_names(screen).index(name))
    await pilot.pause()


async def test_filter_and_facets_narrow_the_table(seeded, db):
    os.remove(seeded["ink-wash"]["path"])  # its stored copy is gone: the status says so
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        assert _names(screen) == ["ink-paper", "ink-wash", "paper-cut"]
        table = screen.query_one(AdapterTable)
        assert [table.get_row_at(i)[3] for i in range(3)] == ["ok", "missing", "ok"]
        for key, char in (("slash", "/"), ("i", "i"), ("n", "n"), ("k", "k")):  # in one burst, as typed fast
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: _names(screen) == ["ink-paper", "ink-wash"] or _names(screen) == ["ink-wash", "ink-paper"])
        await pilot.press("escape")
        assert table.has_focus and screen.query_one("#filter", Input).value == "ink"
        await pilot.press("slash", "ctrl+u", *"brush")  # notes are searched too
        await until(pilot, lambda: _names(screen) == ["ink-wash"])
        await pilot.press("ctrl+u")
        await until(pilot, lambda: len(_names(screen)) == 3)
        tag = screen.query_one("#facet-tag", Select)
        await until(pilot, lambda: ("craft", "craft") in [(str(p), v) for p, v in tag._options])
        tag.value = "craft"
        await until(pilot, lambda: _names(screen) == ["paper-cut"])
        await pilot.press(*"ink")  # the filter and a facet together
        await until(pilot, lambda: screen.shown.text == "ink" and not _names(screen))
        assert "No adapter matches" in str(screen.query_one("#adapters-empty").render())


async def test_detail_shows_lineage_loss_and_images_and_opens_the_run(seeded):
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _library(pilot, 3)
        await _cursor_on(pilot, screen, "paper-cut")
        await pilot.press("enter")
        detail = screen.query_one(AdapterDetail)
        chart = detail.query_one(LossChart)
        await until(pilot, lambda: chart.points == 40 and len(detail.query(".detail-image")) == 3)
        assert detail.display and screen.query_one(AdapterTable).display
        assert not detail.query_one("#detail-texts").display  # an image task's samples are its images
        facts = str(detail.query_one("#detail-facts").render())
        assert "trained by run" in facts and "shapes-run" in facts
        assert "most frequent training tags: paper, cut" in str(detail.query_one("#detail-metadata").render())
        tree = detail.query_one(Tree)
        assert [str(node.label) for node in tree.root.children[0].children] == [
            f"#{seeded['ink-paper']['id']} ink-paper × 0.6 (linear)"]
        await pilot.press("up", "up")  # the pane follows the cursor: ink-paper, made from two parents
        await until(pilot, lambda: str(tree.root.label).endswith("ink-paper") and tree.root.children)
        assert [str(node.label) for node in tree.root.children[0].children] == [
            f"#{seeded['paper-cut']['id']} paper-cut × 0.6 by linear", f"#{seeded['ink-wash']['id']} ink-wash × 0.4 by linear"]
        assert not screen.check_action("open_run", ())
        await pilot.press("down", "down", "r")
        await until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen")
        assert app.current_run == "shapes-run"


async def test_edit_and_rename_are_saved_in_the_library(seeded, db):
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        await _cursor_on(pilot, screen, "ink-wash")
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, EditDialog) and dialog.query_one("#tags", Input).value == "ink style"
        dialog.query_one("#tags", Input).value = "ink, wet"
        dialog.query_one("#trigger-words", Input).value = "inkwash, sumi-e style"
        dialog.query_one("#weight", Input).value = "abc"
        dialog.query_one("#notes").text = "good at 0.7"
        await pilot.press("ctrl+s")
        assert app.screen is dialog and "not a number" in str(dialog.query_one("#dialog-problem").render())
        dialog.query_one("#weight", Input).value = "0.7"
        await pilot.press("ctrl+s")
        row_id = seeded["ink-wash"]["id"]
        await until(pilot, lambda: adapters.get(db, row_id)["preferred_weight"] == 0.7)
        row = adapters.get(db, row_id)
        assert (row["tags"], row["trigger_words"], row["notes"]) == (["ink", "wet"], ["inkwash", "sumi-e style"],
                                                                     "good at 0.7")
        await until(pilot, lambda: screen.query_one(AdapterTable).current_row()["tags"] == ["ink", "wet"])
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, RenameDialog)
        dialog.query_one("#name", Input).value = "paper-cut"  # taken: said in the dialog, which stays open
        await pilot.press("enter")
        await until(pilot, lambda: "already exists" in str(dialog.query_one("#dialog-problem").render()))
        assert app.screen is dialog and dialog.query_one("#name", Input).value == "paper-cut"
        assert adapters.get(db, row_id)["name"] == "ink-wash"
        assert not any("already exists" in n.message for n in app._notifications)
        dialog.query_one("#name", Input).value = "sumi-e"
        await pilot.press("enter")
        await until(pilot, lambda: "sumi-e" in _names(screen))
        assert adapters.get(db, row_id)["name"] == "sumi-e"


async def test_remove_forgets_and_deletes_files_only_when_asked(seeded, db):
    kept, deleted = seeded["paper-cut"], seeded["ink-wash"]
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        await _cursor_on(pilot, screen, "paper-cut")
        await pilot.press("delete")
        assert isinstance(app.screen, RemoveDialog)
        await pilot.press("escape")
        await pilot.press("delete", "f")
        await until(pilot, lambda: _names(screen) == ["ink-paper", "ink-wash"])
        await _cursor_on(pilot, screen, "ink-wash")
        await pilot.press("delete", "d")
        await until(pilot, lambda: _names(screen) == ["ink-paper"])
    assert not db.execute("SELECT 1 FROM adapters WHERE id IN (?, ?)", [kept["id"], deleted["id"]]).fetchone()
    assert Path(kept["path"]).exists() and not Path(deleted["path"]).exists()


async def test_export_writes_the_chosen_format_into_the_chosen_folder(seeded, tmp_path):
    out = tmp_path / "exported"
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        await _cursor_on(pilot, screen, "paper-cut")
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog) and dialog.query_one("#format", Select).value == "kohya"
        dialog.query_one("#folder", Input).value = str(out)
        dialog.query_one("#format", Select).value = "diffusers"
        await pilot.press("ctrl+s")
        written = out / "pytorch_lora_weights.safetensors"
        await until(pilot, lambda: any("exported" in n.message for n in app._notifications))
    info = inspect_file(written)
    assert (info.format, info.rank) == ("diffusers", 4)
    assert len(load_file(written)) == 4  # two modules, down and up each; alpha travels in the header


async def test_import_from_a_path_that_completes(seeded, db, tmp_path):
    kohya_file(tmp_path / "incoming" / "watercolor-v2.safetensors", 7)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        await pilot.press("i")
        assert isinstance(app.screen, ImportDialog)
        field = app.screen.query_one("#ref", Input)
        field.value = f"{tmp_path}/incoming/wa"
        await pilot.press("t")
        await until(pilot, lambda: field._suggestion.endswith("watercolor-v2.safetensors"))
        await pilot.press("right", "enter")
        await until(pilot, lambda: "watercolor-v2" in _names(screen))
        assert screen.query_one(AdapterTable).current_row()["name"] == "watercolor-v2"
    assert adapters.resolve(db, "watercolor-v2")["storage"] == "store"


async def test_marks_choose_the_adapters_for_the_mixer_and_the_palette_offers_the_keys(seeded):
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        assert [row["name"] for row in screen.chosen_rows()] == ["ink-paper"]  # none marked: the cursor's
        await pilot.press("space", "down", "space")  # a mark moves the cursor on
        assert [row["name"] for row in screen.chosen_rows()] == ["ink-paper", "paper-cut"]
        assert screen.query_one(AdapterTable).get_row_at(0)[0] == "●"
        await pilot.press("up", "up", "space")
        assert [row["name"] for row in screen.chosen_rows()] == ["paper-cut"]
        await pilot.press("ctrl+p")
        app.screen.query_one(Input).value = "library: rename"
        await until(pilot, lambda: "Rename (n)" in str(app.screen.query_one(OptionList).get_option_at_index(0).prompt))
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, RenameDialog))


async def test_a_large_library_is_listed_a_page_at_a_time(db):
    from loratui.library.views import PAGE

    db["adapters"].insert_all({"name": f"style-{n}", "path": f"/nowhere/{n}.safetensors", "sha256": str(n),
                               "size": 1, "format": "kohya"} for n in range(PAGE + 20))
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, PAGE)
        assert screen.more and f"{PAGE} of {PAGE + 20} adapters, more below" in str(screen.query_one("#nav-note").render())
        await pilot.press("ctrl+end")  # the cursor on the last row asks for the next page
        await until(pilot, lambda: screen.query_one(AdapterTable).row_count == PAGE + 20)
        assert not screen.more and _names(screen)[-1] == "style-0"


async def test_the_marked_adapters_open_the_mixer(seeded):
    from loratui.screens.mixer import MixerScreen

    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _library(pilot, 3)
        await pilot.press("g")  # nothing marked: the cursor's adapter
        assert isinstance(app.screen, MixerScreen) and app.screen.action == "generate"
        assert [row["name"] for row in app.screen.adapters] == ["ink-paper"]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("down", "space", "space", "c")
        assert isinstance(app.screen, MixerScreen) and app.screen.action == "combine"
        assert [row["name"] for row in app.screen.adapters] == ["ink-wash", "paper-cut"]


async def test_a_causal_lm_adapter_shows_its_runs_samples_as_text(db, tmp_path):
    seed_chat_adapter(db, tmp_path, {5: ["early one", "early two"], 10: ["late one", "late two"]})
    shown = " ".join(details(adapters.details(db, "chat-lora")).split())  # as library show prints it, unaligned
    assert "sample step 10: 'question 1' -> 'late two'" in shown
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _library(pilot, 1)
        await pilot.press("enter")
        detail = screen.query_one(AdapterDetail)
        said = detail.query_one("#detail-texts")
        await until(pilot, lambda: "late one" in str(said.render()))
        assert said.display and not detail.query(".detail-image")
        assert str(said.render()) == ("step 10  question 0\n-> late one\n\nstep 10  question 1\n-> late two\n\n"
                                      "step 5  question 0\n-> early one\n\nstep 5  question 1\n-> early two")
        assert "sample step" not in str(detail.query_one("#detail-facts").render())
