"""Run actions from the detail screen: stop signals the real process, resume and duplicate launch
`loratui run ... --detach`, open adapter lands in the library; dead runs show as crashed."""

import asyncio
import subprocess
import sys

from textual.widgets import DataTable

from engine.errors import LoratuiError
from loratui import detached
from loratui.app import LoratuiApp
from loratui.runs.liveness import process_start_time
from loratui.screens.confirm import ConfirmScreen
from loratui.screens.library import LibraryScreen

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


async def test_a_dead_run_is_shown_as_crashed_and_can_be_resumed(db, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    add_run(db, "gone", status="running", pid=dead.pid, pid_start=1.0, steps=12)
    launched = []
    monkeypatch.setattr(detached, "loratui_cli", lambda args: launched.append(args) or "gone\n")
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
        await pilot.press("r")
        await until(pilot, lambda: "started run gone" in _notes(app))
        assert app.screen.run_id == "gone"
    assert launched == [["run", "--resume", "gone", "--detach"]]


async def test_duplicate_launches_a_copy_of_the_spec(db, monkeypatch, loratui_home):
    add_run(db, "done", status="finished", steps=10, total=10, spec='name = "shapes"\n[train]\nsteps = 10\n')
    launched = []

    def fake_cli(args):
        """What `loratui run --spec COPY --detach` does, seen from the dashboard: a new row, its id printed."""
        launched.append(args)
        add_run(db, "done-copy", status="queued", total=10)
        return "note: something\ndone-copy\n"

    monkeypatch.setattr(detached, "loratui_cli", fake_cli)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run("done")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("d")
        await until(pilot, lambda: app.screen.run_id == "done-copy")
    (args,) = launched
    assert args[:2] == ["run", "--spec"] and args[3:] == ["--detach"]
    assert open(args[2]).read() == 'name = "shapes"\n[train]\nsteps = 10\n'
    assert args[2].startswith(str(loratui_home / "specs"))


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


def test_cli_failures_become_one_line_errors():
    try:
        detached.loratui_cli(["--screen", "nowhere"])
    except LoratuiError as exc:
        assert "invalid choice" in exc.message and "--screen" in exc.message
    else:
        raise AssertionError("expected a LoratuiError")
    printed = detached.loratui_cli(["builtin", "ls"])
    assert "builtin:tiny-sd" in printed
    assert detached.launched_run_id("run-7\n") == "run-7" and detached.launched_run_id("") is None
