"""Launching from the dashboard calls the launch API (loratui.detached): the run id comes back as a value, the
supervisor runs in its own session, nothing imports torch; a new run starts from `n` on the runs screen."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from homes import share_builtins
from textual.widgets import Input, Static

from engine import builtin
from engine.spec import parse_spec
from engine.spec_template import template_values
from loratui import detached
from loratui.app import LoratuiApp
from loratui.screens import spec_editor
from loratui.screens.confirm import ConfirmScreen
from loratui.screens.run_detail import RunDetailScreen
from loratui.widgets.spec_form import SpecForm

from .conftest import add_run, until

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "diffusers", "transformers", "peft", "accelerate"]


def tiny_values(name: str) -> dict:
    values = template_values(model="builtin:tiny-sd", data="builtin:shapes")
    values["name"] = name
    values["train"].update(resolution=32, max_steps=1, checkpointing_steps=0)
    values["validation"]["every_steps"] = 0
    return values


def end_supervised_run(pid: int) -> None:
    """Stop a supervisor and everything it started at once: frozen first, so none starts another."""
    procs: list[psutil.Process] = []
    try:
        found = [psutil.Process(pid)]
        while len(found) != len(procs):
            procs = found
            for proc in procs:
                proc.send_signal(signal.SIGSTOP)
            found = [procs[0], *procs[0].children(recursive=True)]
    except psutil.NoSuchProcess:
        pass
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


@pytest.fixture
def tiny_home(loratui_home, builtin_home):
    """This test's home with tiny-sd and shapes built (once per session, in a child process)."""
    share_builtins(loratui_home, builtin_home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(builtin_home))
        detached.build_builtins_apart(parse_spec(tiny_values("build")))
    return loratui_home


def test_launch_returns_the_run_id_starts_a_detached_supervisor_and_imports_no_torch(tiny_home, db):
    probe = (
        "import json, sys\n"
        "from engine.spec import parse_spec\n"
        "from loratui import detached\n"
        f"launched = detached.launch(parse_spec({tiny_values('api')!r}))\n"
        f"print(json.dumps([launched.run_id, launched.supervisor_pid, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    run_id, pid, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    try:
        assert heavy == []
        row = db["runs"].get(run_id)
        assert row["name"] == "api" and row["status"] == "running" and row["pid"] == pid
        assert os.getsid(pid) == pid != os.getsid(0)  # its own session: the terminal's SIGHUP never reaches it
    finally:
        end_supervised_run(pid)


def test_builtins_are_built_by_a_child_process(loratui_home, monkeypatch):
    monkeypatch.setattr(builtin, "_build", lambda *a: pytest.fail("built in the dashboard's process"))
    values = tiny_values("x")
    values["model"]["pretrained"] = "./not-a-builtin"
    detached.build_builtins_apart(parse_spec(values))
    assert {row["name"] for row in builtin.describe() if row["built"]} == {"shapes"}


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_n_opens_a_fresh_template_that_launches_and_opens_the_new_run(tiny_home, db, monkeypatch):
    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)  # the form alone; no estimate
    app = LoratuiApp()
    pid = None
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "enter")  # the dialog opens on "Fresh template" for the default task
        await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
        editor = app.screen
        await pilot.pause()
        assert editor.query_one(SpecForm).values() == template_values()
        path = editor.query_one("#editor-path", Input).value
        assert path == str(tiny_home.absolute() / "specs" / "shapes-demo.toml")
        assert "✓ valid spec" in text_of(editor, "#editor-errors")
        assert "waiting" not in text_of(editor, "#editor-estimate")

        steps = editor.query_one("#edit-train-max_steps", Input)
        steps.value = ""
        steps.focus()
        await pilot.press("x")
        assert "problems:" in text_of(editor, "#editor-errors") and "valid spec" not in text_of(editor, "#editor-errors")
        assert "waiting for a valid spec" in text_of(editor, "#editor-estimate")
        await pilot.press("backspace", "1")  # a number field takes digits: 1 types, it does not switch screens
        assert app.screen is editor and steps.value == "1"
        assert "✓ valid spec" in text_of(editor, "#editor-errors")
        assert "waiting" not in text_of(editor, "#editor-estimate")

        await pilot.press("escape")  # edits not saved: asked first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is editor

        editor.query_one("#edit-train-resolution", Input).value = "32"
        editor.query_one("#edit-name", Input).value = "from-n"
        await pilot.pause()
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id, timeout=30)
        run_id = app.screen.run_id
        row = db["runs"].get(run_id)
        pid = row["pid"]
        assert row["name"] == "from-n" and row["status"] == "running"
        assert os.getsid(pid) == pid != os.getsid(0)
        assert any(f"run {run_id} started" in note.message for note in app._notifications)
    end_supervised_run(pid)


async def test_resume_starts_a_crashed_run_again_in_its_own_folder(tiny_home, db):
    spec = parse_spec(tiny_values("again"))
    run_dir = add_run(db, "again-1", name="again", status="crashed", steps=3, total=1, spec=spec.to_toml())
    (run_dir / "spec.toml").write_text(spec.to_toml())
    app = LoratuiApp()
    pid = None
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run("again-1")
        await pilot.pause()
        await until(pilot, lambda: app.screen.view is not None)
        await pilot.press("r")
        await until(pilot, lambda: any("run again-1 resumed" in note.message for note in app._notifications),
                    timeout=30)
        row = db["runs"].get("again-1")
        pid = row["pid"]
        assert row["status"] == "running" and row["dir"] == str(run_dir)
        assert os.getsid(pid) == pid != os.getsid(0)
    end_supervised_run(pid)
