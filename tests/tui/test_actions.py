"""Run actions from the detail screen: stop signals the real process, resume refuses what cannot be resumed,
duplicate opens the run settings with the run's spec, open adapter lands in the library; dead runs show as
crashed. (A resume that starts: test_launch.py.)"""

import asyncio
import subprocess
import sys

import tomli_w
from textual.widgets import DataTable, Input

from engine.liveness import process_start_time
from engine.spec_template import template_values
from loratui.app import LoratuiApp
from loratui.screens import spec_editor
from loratui.screens.confirm import ConfirmScreen
from loratui.screens.library import LibraryScreen
from loratui.screens.run_detail import RunDetailScreen
from loratui.widgets.spec_form import SpecForm

from .conftest import add_run, script_events, until

SIGTERM_EXITS_7 = (
    "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
    "print('ready', flush=True)\ntime.sleep(60)"
)


def _notes(app) -> str:
    return "\n".join(note.message for note in app._notifications)


async def test_stop_asks_then_signals_the_run_process(db):
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_EXITS_7], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        run_dir = add_run(db, "r1", status="running", pid=proc.pid, pid_start=process_start_time(proc.pid))
        script_events(run_dir, 5)
        app = LoratuiApp()
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run("r1")
            await pilot.pause()
            await until(pilot, lambda: app.screen.view is not None)
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert proc.poll() is None
            await pilot.press("s")
            await pilot.press("y")
            assert await asyncio.to_thread(proc.wait, 10) == 7
            await until(pilot, lambda: "asked run r1 to stop" in _notes(app))
    finally:
        proc.kill()
        proc.wait()


async def test_a_dead_run_is_shown_as_crashed_and_offered_a_resume(db):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = add_run(db, "gone", status="running", pid=dead.pid, pid_start=1.0, steps=12)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1 and "crashed" in str(table.get_cell("gone", "status")))
        assert db["runs"].get("gone")["status"] == "crashed"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.view is not None)
        assert app.screen.check_action("resume", ()) and not app.screen.check_action("stop", ())
        await pilot.press("s")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")  # its folder lost its spec: the launch API's refusal, as a notification
        await until(pilot, lambda: f"run 'gone' has no spec.toml in {run_dir}" in _notes(app))
        assert app.is_running and app.screen.run_id == "gone"


async def test_duplicate_opens_the_run_settings_with_the_runs_spec(db, monkeypatch, loratui_home):
    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)  # the form alone; no estimate
    values = template_values()
    values["name"], values["lora"]["rank"] = "shapes", 8
    add_run(db, "done", status="finished", steps=10, total=10, spec=tomli_w.dumps(values))
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("done")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
        editor = app.screen
        await pilot.pause()
        assert editor.query_one(SpecForm).values() == values
        assert editor.query_one("#editor-path", Input).value == str(loratui_home.absolute() / "specs" / "done-copy.toml")
        assert db["runs"].count == 1  # nothing launched
        await pilot.press("escape")  # nothing edited: back at once
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == "done"


async def test_open_adapter_selects_the_runs_adapter_in_the_library(db):
    add_run(db, "done", status="finished", steps=10, total=10)
    add_run(db, "other", status="finished", steps=10, total=10)
    for n, run in enumerate(["other", "done"]):
        db["adapters"].insert({"name": f"adapter-{run}", "path": f"/x/{run}.safetensors", "sha256": str(n),
                               "size": 100_000, "format": "diffusers", "family": "sd1", "rank": 4,
                               "source_run": run})
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run("done")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        await until(pilot, lambda: table.current_row()["name"] == "adapter-done")


async def test_an_action_that_fails_is_a_notification(db):
    add_run(db, "lonely", status="finished", steps=10, total=10)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run("lonely")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("a")
        await until(pilot, lambda: "has no adapter in the library yet" in _notes(app))
        assert app.is_running and app.screen.run_id == "lonely"

