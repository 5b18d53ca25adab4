"""End to end: a run started from the dashboard (duplicate, then launch from the run settings) is a real
detached run; the dashboard follows it, and losing the terminal (tmux killed: SIGHUP) does not stop it."""

import time

import pytest
from homes import share_builtins

from engine.spec import parse_toml
from loratui.db.library import open_db

from .conftest import add_run
from .tmux import needs_tmux

pytestmark = [pytest.mark.slow, needs_tmux]

SPEC = """name = "dash-e2e"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
batch_size = 2
max_steps = 12
log_every_steps = 1
checkpointing_steps = 0
"""


def test_a_run_started_from_the_dashboard_outlives_the_terminal(db, tmux, loratui_home, builtin_home):
    share_builtins(loratui_home, builtin_home)
    add_run(db, "dash-source", name="dash-e2e", status="finished", steps=12, total=12, spec=SPEC,
            created="2999-01-01T00:00:00Z")
    tmux.start("")
    tmux.wait_for("dash-source")
    tmux.keys("Enter")
    tmux.wait_for("dash-e2e · finished")
    tmux.keys("d")
    tmux.wait_for("Run settings: a copy of run dash-source")
    tmux.keys("C-l")
    tmux.wait_for("dash-e2e · running", timeout=240)  # the dashboard now shows the new run
    tmux.close()  # the terminal goes away, as when an SSH link drops

    library = open_db()
    deadline = time.monotonic() + 300
    while True:  # bounded polling of a detached process
        rows = list(library.query("SELECT id, status, spec FROM runs WHERE name = 'dash-e2e' AND id != 'dash-source'"))
        if rows and rows[0]["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(1)
    assert rows[0]["status"] == "finished", rows
    assert parse_toml(rows[0]["spec"]) == parse_toml(SPEC)  # the copy, unedited
