"""Screens by key, by palette, by mouse and by --screen; usable at 80x24."""

import pytest
from textual.widgets import DataTable

from loratui.app import LoratuiApp
from loratui.screens.library import LibraryScreen
from loratui.screens.run_detail import RunDetailScreen
from loratui.screens.runs import RunsScreen

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


@pytest.mark.parametrize("flag", ["runs", "library", "browse"])
async def test_screen_flag_opens_that_screen(flag):
    app = LoratuiApp(screen=flag)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_mode == flag


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
