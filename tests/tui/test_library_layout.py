"""The Library screen fits the terminal: at 80x24, 120x40 and 140x45 every column shown has its header whole,
the base model reads `builtin:tiny-sd`, two names that differ only at the end stay distinct, nothing scrolls
sideways, the footer shows whole keys with the most used first, the Edit dialog's buttons are in sight, and
Home/End move the cursor to the first and last row."""

import pytest
from textual.widgets import Button

from loratui.app import LoratuiApp
from loratui.library import adapters
from loratui.screens.adapter_dialogs import EditDialog
from loratui.widgets.adapter_table import AdapterTable, clip, layout
from loratui.widgets.fitting_footer import FittingFooter

from .conftest import until
from .library_seed import kohya_file, seed_library

SIZES = [(80, 24), (120, 40), (140, 45)]
TWINS = ("shapes-demo-20261207-124846", "shapes-demo-20261207-124846-2")


@pytest.fixture
def seeded(db, tmp_path):
    rows = seed_library(db, tmp_path / "files")
    for n, name in enumerate(TWINS):
        adapters.register(db, kohya_file(tmp_path / "files" / f"{name}.safetensors", 10 + n), name=name,
                          base_model="builtin:tiny-sd", tags=["shapes", "demo"])
    return rows


async def _library(pilot) -> AdapterTable:
    await pilot.press("4")
    table = pilot.app.screen.query_one(AdapterTable)
    await until(pilot, lambda: table.row_count == 5 and table.columns_shown)
    await pilot.pause()
    return table


def _shown_keys(footer: FittingFooter) -> list[str]:
    return [key.key for key in footer.query("FooterKey") if key.display and not key.has_class("-command-palette")]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_the_table_and_footer_fit(seeded, size):
    app = LoratuiApp()
    async with app.run_test(size=size) as pilot:
        table = await _library(pilot)
        header = table.render_line(0).text
        titles = [column.title for column, _ in table.columns_shown]
        assert {"Id", "Name", "Status", "Base model"} <= set(titles)
        position = 0
        for title in titles[1:]:  # each header whole, in order
            position = header.index(title, position) + len(title)
        assert table.max_scroll_x == 0 and position <= table.size.width
        lines = [table.render_line(y).text for y in range(1, 6)]
        assert sum("builtin:tiny-sd" in line for line in lines) == 3
        names = [line.split()[1] for line in lines[:2]]  # the two newest, the twins (no mark: id, name)
        assert len(set(names)) == 2 and names[0].endswith("-2") and not names[1].endswith("-2")

        footer = app.screen.query_one(FittingFooter)
        await until(pilot, lambda: {"enter", "slash", "space", "g", "e"} <= set(_shown_keys(footer)))
        palette = next(key for key in footer.query("FooterKey") if key.has_class("-command-palette"))
        order = [key.key for key in footer.query("FooterKey") if not key.has_class("-command-palette")]
        shown = _shown_keys(footer)
        assert order[: len(shown)] == shown  # the first ones, none skipped
        assert all(key.region.right <= palette.region.x for key in footer.query("FooterKey")
                   if key.display and key is not palette)
        if size[0] >= 120:
            assert {"i", "delete"} <= set(shown)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_the_edit_dialog_keeps_its_buttons_in_sight(seeded, size):
    app = LoratuiApp()
    async with app.run_test(size=size) as pilot:
        await _library(pilot)
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, EditDialog)
        await pilot.pause()
        for button in dialog.query(Button):
            assert button.region.height and dialog.region.contains_region(button.region), button.id
            assert dialog.query_one("#dialog").region.contains_region(button.region), button.id
        await pilot.press("tab", "tab", "tab")  # down to the notes, which may scroll: the buttons stay
        assert dialog.focused.id == "notes"
        await pilot.pause()
        assert dialog.region.contains_region(dialog.focused.region)
        assert all(dialog.region.contains_region(button.region) for button in dialog.query(Button))


async def test_home_and_end_move_the_cursor_to_the_first_and_last_row(seeded):
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = await _library(pilot)
        table.move_cursor(row=2)
        await pilot.press("end")
        assert table.cursor_row == 4 and table.current_row()["name"] == "paper-cut"
        await pilot.press("home")
        assert table.cursor_row == 0 and table.current_row()["name"] == TWINS[1]
        assert table.scroll_x == 0


def test_a_long_name_keeps_its_end_and_the_name_gets_room_before_optional_columns():
    assert clip("shapes-demo-20261207-124846-2", 16, keep_end=True) == "shape…7-124846-2"
    assert clip("a-long-tag-list", 8) == "a-long-…"
    row = {"mark": "", "id": "12", "name": "n" * 60, "status": "missing", "base": "builtin:tiny-sd",
           "task": "text-to-image", "family": "sd1", "rank": "4", "weight": "1", "size": "3.0 KiB", "tags": "",
           "trigger": ""}
    narrow = dict((column.key, width) for column, width in layout([row], 60))
    assert list(narrow) == ["mark", "id", "name", "status", "base"] and sum(w + 2 for w in narrow.values()) <= 60
    wide = dict((column.key, width) for column, width in layout([row], 200))
    assert wide["name"] == 60 and "trigger" in wide


async def test_beside_the_detail_pane_names_keep_their_ends(seeded):
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = await _library(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.has_class("-detail") and table.size.width < 70)
        await until(pilot, lambda: dict((c.key, w) for c, w in table.columns_shown)["name"] < len(TWINS[1]))
        names = [table.render_line(y).text.split()[1] for y in (1, 2)]
        assert names[0] != names[1] and names[0].endswith("124846-2") and names[1].endswith("-124846")
        assert all("…" in name for name in names) and table.max_scroll_x == 0


async def test_an_empty_librarys_footer_offers_import_first(db):
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        footer = app.screen.query_one(FittingFooter)
        await until(pilot, lambda: app.screen.shown is not None and "i" in _shown_keys(footer))
        assert not {"space", "g", "e", "delete"} & set(_shown_keys(footer))  # nothing to act on
        assert "0 adapters" in str(app.screen.query_one("#nav-note").render())
