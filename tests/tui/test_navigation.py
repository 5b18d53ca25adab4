"""Screens by key, by palette, by mouse and by --screen; usable at 80x24; the runs screen's keys."""

import pytest
import tomli_w
from textual import events
from textual.widgets import DataTable, Input
from textual.widgets._footer import FooterKey

from engine.spec_template import template_values
from loratui.app import LoratuiApp
from loratui.cli import build_parser
from loratui.screens import MAIN_KEYS, spec_editor
from loratui.screens.library import LibraryScreen
from loratui.screens.new_run import NewRunScreen
from loratui.screens.run_detail import RunDetailScreen
from loratui.screens.runs import RunsScreen
from loratui.widgets.spec_form import SpecForm

from .conftest import add_run, script_events, until


async def test_keys_palette_and_mouse_reach_the_screens(db):
    run_dir = add_run(db, "run-a", status="finished", steps=10, total=10, loss=0.1)
    script_events(run_dir, 10, total=10, end="run_finished")
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, RunsScreen)
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("2")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.has_class("-no-run")
        await pilot.press("4")
        assert isinstance(app.screen, LibraryScreen)
        await pilot.press("1", "enter")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == "run-a"
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("ctrl+p", *"library", "enter")
        assert isinstance(app.screen, LibraryScreen)
        await pilot.click("#nav-runs")
        assert isinstance(app.screen, RunsScreen)
        await pilot.click(DataTable, offset=(3, 1))
        assert isinstance(app.screen, RunDetailScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


@pytest.mark.parametrize("flag", MAIN_KEYS)
async def test_screen_flag_opens_that_screen(flag):
    assert MAIN_KEYS == ("runs", "detail", "browse", "library")
    assert build_parser().parse_args(["--screen", flag]).screen == flag
    app = LoratuiApp(screen=flag)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_mode == flag


def footer_keys(screen) -> dict[str, str]:
    return {key.description: key.key for key in screen.query(FooterKey)}


async def test_runs_at_80_columns_keep_the_id_in_view_and_the_footer_says_enter_opens(db):
    run_id = "shapes-demo-with-a-long-name-20250104-100000"
    add_run(db, run_id, name="shapes-demo-with-a-long-name", status="running", steps=40, total=100, loss=0.21)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.pause()
        shown = "".join(segment.text for segment in table.render_line(1))  # the first row under the header
        assert run_id in shown, shown
        keys = footer_keys(app.screen)
        assert keys.get("Open run") == "enter" and keys.get("New run") == "n"
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == run_id


async def test_arrows_typed_ahead_of_enter_move_the_cursor_before_it_opens_a_run(db):
    add_run(db, "older", created="2025-01-04T10:00:00Z")
    add_run(db, "newer", created="2025-01-04T11:00:00Z")
    app = LoratuiApp()
    async with app.run_test() as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=1)
        await pilot.pause()
        for key in ("up", "up", "enter"):  # in one burst, as a terminal delivers keys typed fast
            app.post_message(events.Key(key, None))
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id is not None)
        assert app.screen.run_id == "newer"


async def test_n_opens_the_run_settings_from_a_spec_file_whose_path_completes(loratui_home, monkeypatch):
    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)  # the form alone; no estimate
    values = template_values()
    values["name"], values["lora"]["rank"] = "from-file", 16
    folder = loratui_home / "my specs"
    folder.mkdir(parents=True)
    (folder / "rank16.toml").write_text(tomli_w.dumps(values))
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        path = app.screen.query_one("#new-run-path", Input)
        path.focus()
        path.value = f"{folder}/ra"
        await until(pilot, lambda: path._suggestion == f"{folder}/rank16.toml")
        await pilot.press("right", "enter")  # right arrow takes the completion
        await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
        editor = app.screen
        await pilot.pause()
        assert editor.query_one(SpecForm).values() == values
        assert editor.query_one("#editor-path", Input).value == str(folder / "rank16.toml")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("n")
        app.screen.query_one("#new-run-path", Input).focus()
        await pilot.press(*"nowhere.toml", "enter")  # said in the dialog, which stays open with the path
        dialog = app.screen
        await until(pilot, lambda: "spec file not found" in str(dialog.query_one("#dialog-problem").render()))
        assert isinstance(dialog, NewRunScreen) and dialog.query_one("#new-run-path", Input).value == "nowhere.toml"


async def test_narrow_terminal_shows_charts_and_samples_in_turn(db):
    run_dir = add_run(db, "run-a", status="finished", steps=20, total=20)
    script_events(run_dir, 20, total=20, end="run_finished")
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run("run-a")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        side, charts = app.screen.query_one("#side"), app.screen.query_one("#charts")
        assert charts.display and not side.display
        await pilot.press("v")
        assert side.display and not charts.display
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        assert side.display and charts.display
