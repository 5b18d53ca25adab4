"""End to end: browse to builtin:tiny-sd and builtin:shapes, edit the rank and the steps, launch, and see
the run finish in the monitor. A real detached `loratui run` through accelerate launch (32 px, 6 steps)."""

import pytest
from textual.widgets import Collapsible, Input, Static
from tuihelp import open_editor, text_of, until

from engine.spec import load_spec
from loratui.app import LoratuiApp

pytestmark = pytest.mark.slow
SIZE = (140, 44)
EDITS = {
    "lora-rank": "8",
    "train-max_steps": "6",
    "train-resolution": "32",
    "train-checkpointing_steps": "0",
    "validation-every_steps": "0",
    "validation-prompt": "",
}


async def test_browse_edit_launch_and_watch_the_run_finish(offline, built, quick_worker):
    from loratui.db.library import open_db
    from loratui.runs.control import stop_run

    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    said = []  # notifications expire on screen; keep them for the failure message
    notify = app.notify
    app.notify = lambda message, *a, **k: (said.append(str(message)), notify(message, *a, **k))[1]
    run_id = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_editor(pilot, app)
            editor.query_one("#group-validation", Collapsible).collapsed = False  # its rows mount when opened
            await until(pilot, lambda: editor.query("#edit-validation-prompt"))
            for field, value in EDITS.items():
                editor.query_one(f"#edit-{field}", Input).value = value
            await pilot.pause()
            assert "✓ valid spec" in text_of(editor.query_one("#editor-errors", Static))
            await pilot.press("ctrl+l")

            try:
                await until(pilot, lambda: app.current_mode == "detail" and app.current_run, 120)
            except AssertionError:
                raise AssertionError(said) from None
            run_id = app.current_run
            title = app.screen.query_one("#run-title", Static)
            await until(pilot, lambda: "finished" in str(title.content) or "failed" in str(title.content), 400)
            assert "✓ finished" in str(title.content), (str(title.content), said)
            numbers = app.screen.query_one("#run-numbers", Static)
            # The status and the event tail are read separately: the last steps may land a poll later.
            await until(pilot, lambda: "step 6/6" in str(numbers.content), 30)

        db = open_db()
        row = db["runs"].get(run_id)
        spec = load_spec(f"{row['dir']}/spec.toml")
        assert (spec.lora.rank, spec.train.max_steps, spec.train.resolution) == (8, 6, 32)
        assert (spec.model.pretrained, spec.data.source) == ("builtin:tiny-sd", "builtin:shapes")
        run_id = None if row["status"] == "finished" else run_id
    finally:
        if run_id is not None:
            stop_run(open_db(), run_id)
