"""The run settings: a form from the spec's schema, the same messages as `loratui spec validate`, a template
for the chosen model and data, TOML load/save, what differs from the defaults, and the estimate."""

import subprocess
import sys
import tomllib

from textual.widgets import Input, Select, Static, Switch
from tuihelp import open_editor, text_of, until

from engine.spec import spec_errors, validate
from engine.spec_template import template_values
from engine.tasks import DEFAULT_TASK, spec_model
from loratui.app import LoratuiApp
from loratui.widgets.spec_form import SpecForm, schema_fields

SIZE = (140, 44)


def row_error(editor, path: str) -> str:
    return text_of(editor.query_one(f"#field-{path.replace('.', '-')} .field-error", Static))


async def test_every_schema_field_gets_an_editor_with_its_help(offline, built, no_estimate, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        form = editor.query_one(SpecForm)
        assert set(form.rows) == {path for path, _ in schema_fields(spec_model(DEFAULT_TASK))}
        assert isinstance(editor.query_one("#edit-lora-train_text_encoder"), Switch)
        assert isinstance(editor.query_one("#edit-train-mixed_precision"), Select)
        help_text = text_of(editor.query_one("#field-lora-rank .field-help", Static))
        assert "Inner dimension of the LoRA matrices" in help_text and "[default: 4]" in help_text


async def test_starts_from_the_template_for_the_model_and_data_with_the_chosen_columns(offline, built, no_estimate, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        values = editor.query_one(SpecForm).values()
        expected = template_values(model="builtin:tiny-sd", data="builtin:shapes")
        expected["data"].update(image_column="image", caption_column="text")
        assert values == expected
        assert "✓ valid spec" in text_of(editor.query_one("#editor-errors", Static))
        changes = text_of(editor.query_one("#editor-changes", Static))
        assert "train.resolution = 64 (default 512)" in changes
        assert "lora.rank" not in changes


async def test_inline_validation_gives_the_messages_of_spec_validate(offline, built, no_estimate, tmp_path, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        form = editor.query_one(SpecForm)
        editor.query_one("#edit-lora-rank", Input).value = "0"
        editor.query_one("#edit-train-batch_size", Input).value = "x"
        await pilot.pause()
        assert row_error(editor, "lora.rank").strip() == "must be > 0 (got 0)"
        assert row_error(editor, "train.batch_size").strip() == "expected an integer (got 'x')"
        assert editor.query_one("#field-lora-rank").has_class("-bad")

        import tomli_w

        bad = tmp_path / "bad.toml"
        bad.write_text(tomli_w.dumps(form.values()))
        cli = subprocess.run([sys.executable, "-m", "loratui", "spec", "validate", str(bad)],
                             capture_output=True, text=True)
        listed = [line.strip() for line in cli.stderr.splitlines() if line.startswith("  ")]
        shown = text_of(editor.query_one("#editor-errors", Static))
        assert listed == spec_errors(form.values()) and all(line in shown for line in listed)
        assert cli.returncode == 2

        await pilot.press("ctrl+l")
        await pilot.pause()
        assert any("fix the problems" in n.message for n in app._notifications)


async def test_edits_show_as_differences_and_reach_the_estimate(offline, built, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        estimate = editor.query_one("#editor-estimate", Static)
        await until(pilot, lambda: "optimizer steps 200" in text_of(estimate), 90)
        assert "epochs          17 (12 steps each)" in text_of(estimate)
        assert "model and data checked" in text_of(estimate)
        before = text_of(estimate)
        editor.query_one("#edit-lora-rank", Input).value = "8"
        editor.query_one("#edit-train-max_steps", Input).value = "0"
        editor.query_one("#edit-train-num_epochs", Input).value = "2"
        await until(pilot, lambda: "optimizer steps 24" in text_of(estimate), 90)
        assert "epochs          2 " in text_of(estimate)
        assert text_of(estimate) != before
        changes = text_of(editor.query_one("#editor-changes", Static))
        assert "lora.rank = 8 (default 4)" in changes and "train.num_epochs = 2 (default 0)" in changes
        assert editor.query_one("#field-lora-rank").has_class("-changed")


async def test_preflight_problems_show_under_their_field(offline, built, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        editor.query_one("#edit-data-caption_column", Input).value = "caption"
        await pilot.pause()
        assert "no column 'caption' in builtin:shapes" in row_error(editor, "data.caption_column")
        editor.query_one("#edit-data-caption_column", Input).value = "text"
        editor.query_one("#edit-train-resolution", Input).value = "63"
        await until(pilot, lambda: "multiple of the VAE scale factor" in row_error(editor, "train.resolution"), 90)
        assert "✗" not in text_of(editor.query_one("#editor-errors", Static))


async def test_save_and_load_toml(offline, built, no_estimate, tmp_path, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, app)
        path = tmp_path / "mine.toml"
        editor.query_one("#edit-lora-rank", Input).value = "16"
        editor.query_one("#editor-path", Input).value = str(path)
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = tomllib.loads(path.read_text())
        assert saved["lora"]["rank"] == 16
        assert validate(saved).lora.rank == 16

        other = tmp_path / "other.toml"
        values = template_values(model="builtin:tiny-sd", data="builtin:shapes")
        values["name"] = "loaded"
        values["lora"]["rank"] = 2
        values["lora"]["bogus"] = 1
        import tomli_w

        other.write_text(tomli_w.dumps(values))
        editor.query_one("#editor-path", Input).value = str(other)
        await pilot.press("ctrl+o")
        await pilot.pause()
        form = editor.query_one(SpecForm)
        assert form.values()["name"] == "loaded"
        assert form.values()["lora"]["rank"] == 2
        assert any("lora.bogus: unknown field" in n.message for n in app._notifications)

        editor.query_one("#editor-path", Input).value = str(tmp_path / "missing.toml")
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert any("spec file not found" in n.message for n in app._notifications)
        assert app.is_running


async def test_a_hub_model_on_local_images_is_estimated_from_its_config_files(fake_hub, tmp_path):
    from test_browse_local import _imagefolder
    from tuihelp import choose, names

    pics = _imagefolder(tmp_path / "pics")
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"acme/tiny", "enter")
        await choose(pilot, screen, "acme/tiny-sd")
        await pilot.press("ctrl+f")
        screen.query_one("#browse-search", Input).value = str(pics)
        await pilot.press("enter")
        await until(pilot, lambda: screen.kind == "dataset" and "pics" in names(screen))
        await choose(pilot, screen, "pics")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.query(SpecForm))
        editor = app.screen
        values = editor.query_one(SpecForm).values()
        assert (values["model"]["pretrained"], values["data"]["source"]) == ("acme/tiny-sd", str(pics))
        assert values["data"]["caption_column"] == "caption"
        editor.query_one("#edit-train-resolution", Input).value = "64"
        estimate = editor.query_one("#editor-estimate", Static)
        said = []
        notify = app.notify
        app.notify = lambda message, *a, **k: (said.append(str(message)), notify(message, *a, **k))[1]
        try:
            await until(pilot, lambda: "trainable" in text_of(estimate), 90)
        except AssertionError:
            raise AssertionError([said, text_of(editor.query_one("#editor-errors", Static))]) from None
        assert "rows            3" in text_of(estimate) and "23.0k parameters" in text_of(estimate)
        assert "model and data checked" in text_of(estimate)
        assert not [p for m, p, _ in fake_hub.requests if m == "GET" and "/resolve/" in p and not p.endswith(".json")]


async def test_a_collapsed_section_mounts_its_rows_when_opened_and_counts_before(no_estimate, tmp_path):
    """The form appears sooner: rows of sections shown collapsed are not built until opened, yet their
    values (as given, as loaded) are the form's all along."""
    from textual.widgets import Collapsible

    from loratui.screens.spec_editor import SpecEditorScreen

    values = template_values(model="builtin:tiny-sd", data="builtin:shapes")
    values["validation"]["every_steps"] = 7
    app = LoratuiApp(screen="runs")
    async with app.run_test(size=SIZE) as pilot:
        editor = SpecEditorScreen(values)
        await app.push_screen(editor)
        form = editor.query_one(SpecForm)
        assert form.values() == values and not editor.query("#edit-validation-every_steps")
        assert "validation.every_steps = 7 (default" in text_of(editor.query_one("#editor-changes", Static))
        loaded = {**values, "validation": {**values["validation"], "every_steps": 9}}
        assert form.load(loaded) == [] and form.values()["validation"]["every_steps"] == 9
        form.set_external(["train.resolution: must be a multiple of 8"])  # as the estimate's preflight says
        editor.query_one("#group-validation", Collapsible).collapsed = False
        # the row paints its state when mounted, a moment after its editor exists
        await until(pilot, lambda: editor.query("#field-validation-every_steps.-changed"))
        field = editor.query_one("#edit-validation-every_steps", Input)
        assert field.value == "9"
        await pilot.pause()
        assert "must be a multiple of 8" in row_error(editor, "train.resolution")  # opening is no edit
        field.value = "x"
        await pilot.pause()
        assert form.values()["validation"]["every_steps"] == "x"
        assert row_error(editor, "validation.every_steps").strip() == "expected an integer (got 'x')"
