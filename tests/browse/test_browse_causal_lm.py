"""Browse and the run settings with a causal-lm model: the dataset's columns are mapped to the format its
columns tell (text, prompt-response or chat), by the spec's own rule, never to text-to-image's roles."""

import json

from textual.widgets import Input, Static
from tuihelp import choose, highlight, text_of, until

from loratui.app import LoratuiApp
from loratui.widgets.browse_detail import DetailPanel
from loratui.widgets.spec_form import SpecForm

SIZE = (140, 44)
FORMATS = {
    "builtin:tiny-text": ({"text_column": "text"}, "text"),
    "builtin:tiny-instruct": ({"prompt_column": "prompt", "response_column": "response", "system_column": "system"},
                              "prompt-response"),
    "builtin:tiny-chat": ({"messages_column": "messages"}, "chat"),
}


def row_error(editor, path: str) -> str:
    return text_of(editor.query_one(f"#field-{path.replace('.', '-')} .field-error", Static))


async def show(pilot, screen, name: str) -> DetailPanel:
    panel = screen.query_one(DetailPanel)
    await highlight(pilot, screen, name)
    await until(pilot, lambda: panel.dataset is not None and panel.entry.title == name, 60)
    return panel


async def test_a_causal_lm_model_maps_each_data_format_and_the_run_settings_check_it(
    offline, no_estimate, quick_worker, tmp_path
):
    unusable = tmp_path / "notes.jsonl"
    unusable.write_text(json.dumps({"title": "a", "body": "b"}) + "\n")
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t")
        await choose(pilot, screen, "builtin:tiny-chat")
        assert screen.mapping == {}, "no image or caption column in a chat set"
        await pilot.press("ctrl+t")
        await choose(pilot, screen, "builtin:tiny-llama")
        assert screen.mapping == {"messages_column": "messages"}, "mapped again for the model's task"

        await pilot.press("ctrl+t")
        checks = screen.query_one("#detail-checks", Static)
        for name, (mapping, fmt) in FORMATS.items():
            panel = await show(pilot, screen, name)
            assert panel.mapping() == mapping
            assert text_of(checks).strip() == f"✓ columns fit the causal-lm task as {fmt} data"
            assert not screen.query("#role-image_column")

        await pilot.press("slash", *str(unusable), "enter")
        await show(pilot, screen, "notes.jsonl")
        await until(pilot, lambda: "cannot tell" in text_of(checks))
        assert "cannot tell text, prompt-response or chat data from the columns in" in text_of(checks)
        assert "(columns: title, body)" in text_of(checks) and checks.has_class("-bad")

        await show(pilot, screen, "builtin:tiny-chat")
        await pilot.press("enter", "ctrl+n")
        await until(pilot, lambda: app.screen.query(SpecForm))
        editor = app.screen
        values = editor.query_one(SpecForm).values()
        assert values["task"] == "causal-lm" and values["data"]["messages_column"] == "messages"
        assert "✓ valid spec" in text_of(editor.query_one("#editor-errors", Static))
        column = editor.query_one("#edit-data-messages_column", Input)
        column.value = "convo"
        await until(pilot, lambda: "no column 'convo' in builtin:tiny-chat" in row_error(editor, "data.messages_column"))
        column.value = ""  # the spec's own rule finds the usual name
        await until(pilot, lambda: "✓ valid spec" in text_of(editor.query_one("#editor-errors", Static)))
