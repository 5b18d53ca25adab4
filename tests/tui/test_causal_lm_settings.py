"""The run settings cover causal-lm: `n` on Runs gives its template, the form has its [data], [model] and
[validation] fields with their help, and a wrong value is named under its field. No training, no estimate."""

from textual.widgets import Input, Select, Static

from engine.spec_template import template_values
from loratui.app import LoratuiApp
from loratui.screens import spec_editor
from loratui.widgets.spec_form import SpecForm

from .conftest import until


def _under(editor, path: str, part: str) -> str:
    return str(editor.query_one(f"#field-{path.replace('.', '-')} .field-{part}", Static).render())


async def test_n_gives_the_causal_lm_template_with_its_fields_help_and_errors(monkeypatch):
    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)  # the form alone; no estimate
    app = LoratuiApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("n")
        app.screen.query_one("#new-run-task", Select).value = "causal-lm"
        await pilot.pause()
        await pilot.click("#new-run-template")
        await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
        editor = app.screen
        await pilot.pause()
        form = editor.query_one(SpecForm)
        assert form.values() == template_values(task="causal-lm")
        assert {("data", "messages_column"), ("data", "template"), ("data", "packing"), ("model", "load_in_4bit"),
                ("model", "attn_implementation"), ("validation", "prompts")} <= set(form.rows)
        assert "list of {role, content}" in _under(editor, "data.messages_column", "help")
        assert "chatml" in _under(editor, "data.template", "help")
        editor.query_one("#edit-data-template", Input).value = "no-such-template"
        await pilot.pause()
        assert "'no-such-template' is not a built-in template" in _under(editor, "data.template", "error")
        editor.query_one("#edit-data-template", Input).value = "chatml"
        editor.query_one("#edit-data-max_length", Input).value = "0"
        await pilot.pause()
        assert "must be > 0 (got 0)" in _under(editor, "data.max_length", "error")
        assert not _under(editor, "data.template", "error").strip()
