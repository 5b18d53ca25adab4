"""The dashboard for every registered task, driven with Textual's pilot: a run launched from the New-run dialog
with the task's template, the run settings' estimate, the run detail of the task's trained run (its charts and
its own samples or eval figures) and the Library's detail of its adapters. A task added to the registry is tested
here with no list to update."""

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from homes import share_builtins
from registry_runs import TASKS
from textual.widgets import DataTable, Input, Select, Static
from tui.conftest import until
from tui.test_launch import end_supervised_run

from engine.spec_template import template_values
from engine.tasks import registry
from loratui.app import LoratuiApp
from loratui.screens import spec_editor
from loratui.screens.library import LibraryScreen
from loratui.screens.new_run import NewRunScreen
from loratui.screens.run_detail import RunDetailScreen
from loratui.screens.runs import RunsScreen
from loratui.widgets.adapter_detail import AdapterDetail
from loratui.widgets.adapter_table import AdapterTable
from loratui.widgets.charts import LossChart, StepChart
from loratui.widgets.sample_panel import SamplePanel

pytestmark = pytest.mark.slow
SIZE = (140, 45)
ESTIMATE_S = 60  # the quick worker's first question imports torch and reads the built-in model
FIGURES = re.compile(r"trainable +[\d.]+[kMG]? parameters of [\d.]+[kMG]?\n +memory +~[\d.]+ [KMGT]?B")


@pytest.fixture(scope="module")
def quick_worker(trained, tmp_path_factory):
    """One quick worker (the run settings' estimate) for the module, on a home sharing the trained built-ins."""
    from loratui.library.worker_client import WorkerClient

    home = share_builtins(tmp_path_factory.mktemp("quick-home"), Path(trained["home"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        mp.setenv("HF_HUB_OFFLINE", "1")
        client = WorkerClient()
    yield client
    client.close()


@pytest.fixture
def trained_copy(trained, tmp_path, monkeypatch) -> Path:
    """A LORATUI_HOME holding a copy of the trained runs and their adapters (the trained home is only read)."""
    source = Path(trained["home"])
    home = share_builtins(tmp_path / "home", source)
    for folder in ("runs", "adapters"):
        shutil.copytree(source / folder, home / folder, symlinks=True)
    with sqlite3.connect(source / "library.db") as old, sqlite3.connect(home / "library.db") as new:
        old.backup(new)
        new.execute("UPDATE runs SET dir = replace(dir, ?, ?)", (str(source), str(home)))
        new.execute("UPDATE samples SET path = replace(path, ?, ?)", (str(source), str(home)))
        new.execute("UPDATE adapters SET path = replace(path, ?, ?)", (str(source), str(home)))
    old.close()
    new.close()
    monkeypatch.setenv("LORATUI_HOME", str(home))
    return home


def _query(home: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(home / "library.db") as db:
        rows = db.execute(sql, args).fetchall()
    db.close()
    return rows


def _failures(app) -> list[str]:
    return [note.message for note in app._notifications if note.severity == "error"]


def _said(widget) -> str:
    return str(widget.render())


def _nones(screen) -> list[str]:
    """The texts on the screen that show a missing value as `None`."""
    return [_said(static) for static in screen.query(Static) if re.search(r"\bNone\b", _said(static))]


async def _template_editor(pilot, task: str) -> spec_editor.SpecEditorScreen:
    """`n` on the runs screen, the task chosen in the New-run dialog, Fresh template: the run settings."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, RunsScreen))
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, NewRunScreen))
    app.screen.query_one("#new-run-task", Select).value = task
    await pilot.pause()
    await pilot.click("#new-run-template")
    await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
    await pilot.pause()
    return app.screen


async def _estimated(pilot, editor) -> str:
    """The estimate pane once it shows figures (or the dashboard has reported a failure)."""
    shown = editor.query_one("#editor-estimate", Static)
    await until(pilot, lambda: _said(shown).startswith("estimate:\n") or _failures(pilot.app), timeout=ESTIMATE_S)
    assert not _failures(pilot.app)
    return _said(shown)


@pytest.mark.parametrize("task", TASKS)
async def test_new_run_dialog_launches_the_tasks_template_and_the_runs_screen_lists_it(task, trained, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)  # the launch alone; the estimate is tested below
    home = share_builtins(tmp_path / "home", Path(trained["home"]))
    monkeypatch.setenv("LORATUI_HOME", str(home))
    template = template_values(task)
    app = LoratuiApp()
    pid = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            editor = await _template_editor(pilot, task)
            assert f"a new {task} run" in _said(editor.query_one("#editor-title"))
            assert editor.query_one("#editor-form").values() == template
            assert "✓ valid spec" in _said(editor.query_one("#editor-errors"))
            editor.query_one("#edit-train-max_steps", Input).value = "1"  # never trained far: it is ended below
            await pilot.pause()
            await pilot.press("ctrl+l")
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id, timeout=30)
            run_id = app.screen.run_id
            [(pid, ran, name, spec)] = _query(home, "SELECT pid, task, name, spec FROM runs WHERE id = ?", run_id)
            assert (ran, name) == (task, template["name"])
            assert f'pretrained = "{template["model"]["pretrained"]}"' in spec and "max_steps = 1" in spec
            await pilot.press("1")
            runs = app.screen
            assert isinstance(runs, RunsScreen)
            table = runs.query_one(DataTable)
            await until(pilot, lambda: run_id in runs.rows and table.row_count == 1)
            status, shown_id, _, _, _, shown_name = table.get_row(run_id)
            assert shown_id == run_id and shown_name == template["name"]
            assert str(status).split()[-1] in ("running", "finished")
            assert not _failures(app)
    finally:
        if pid:
            end_supervised_run(pid)


@pytest.mark.parametrize("task", TASKS)
async def test_the_run_settings_of_the_tasks_template_end_in_an_estimate(task, trained, tmp_path, monkeypatch,
                                                                        quick_worker):
    monkeypatch.setenv("LORATUI_HOME", str(share_builtins(tmp_path / "home", Path(trained["home"]))))
    app = LoratuiApp(quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        editor = await _template_editor(pilot, task)
        estimate = await _estimated(pilot, editor)
        assert FIGURES.search(estimate), estimate
        assert re.search(r"rows +\d+\n +optimizer steps +\d+", estimate), estimate


def _run_records(home: Path, run_id: str) -> dict:
    """What the run recorded, as the library holds it: its steps, samples and eval metrics."""
    return {
        "steps": _query(home, "SELECT count(*) FROM steps WHERE run_id = ?", run_id)[0][0],
        "samples": _query(home, "SELECT step, prompt, path, text FROM samples WHERE run_id = ? ORDER BY step", run_id),
        "eval": sorted({key.removeprefix("eval/") for (key,) in _query(
            home, "SELECT key FROM metrics WHERE run_id = ? AND key LIKE 'eval/%'", run_id)}),
    }


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


@pytest.mark.parametrize("task", TASKS)
async def test_the_run_detail_draws_the_tasks_charts_and_figures_and_duplicates_to_an_estimate(
        task, trained, trained_copy, quick_worker):
    run_id = trained["adapters"][task][0]["run"]
    records = _run_records(trained_copy, run_id)
    assert records["steps"] and (records["samples"] or records["eval"]), records  # the run shows what it learned
    app = LoratuiApp(quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(run_id)
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.view is not None)
        screen = app.screen
        loss = screen.query_one(LossChart)
        await until(pilot, lambda: loss.points == records["steps"])
        assert "waiting" not in loss.title and screen.query_one("#memory-chart", StepChart).points
        numbers = _said(screen.query_one("#run-numbers"))
        assert "step 2/2 (100%)" in numbers and "loss " in numbers
        assert f"finished  {screen.view.row['name']}" in _said(screen.query_one("#run-title"))

        panel = screen.query_one(SamplePanel)
        caption = _said(panel.query_one("#sample-caption"))
        texts = [sample for sample in records["samples"] if sample[3] is not None]
        if texts:
            step, prompt, _, text = texts[-1]
            assert caption == f"completions of the validation prompts, newest first (step {step})"
            said = _words(_said(panel.query_one("#sample-text")))
            assert f"step {step} {prompt}" in said and _words(text) in said
        elif records["samples"]:
            step, prompt, _, _ = records["samples"][-1]
            await until(pilot, lambda: panel.query("#sample-image"))
            assert caption == f"step {step}: {prompt}" and panel.query_one("#sample-image").image is not None
        else:
            assert caption == "no samples yet"

        evaluated = screen.query_one("#eval-chart", StepChart)
        assert evaluated.display == bool(records["eval"])
        if records["eval"]:
            assert evaluated.points == 2  # before training and at its end
            assert sorted(label for label, _, _ in evaluated._lines) == records["eval"]
        assert not _nones(screen) and not _failures(app)

        await pilot.press("d")  # duplicate: the run settings with the run's spec, and their estimate
        await until(pilot, lambda: isinstance(app.screen, spec_editor.SpecEditorScreen))
        assert FIGURES.search(await _estimated(pilot, app.screen))


async def _adapter_detail(pilot, adapter_id: int) -> AdapterDetail:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, LibraryScreen) and app.screen.shown is not None)
    screen = app.screen
    app.selected_adapter = adapter_id
    table = screen.query_one(AdapterTable)
    await until(pilot, lambda: table.current_row() is not None and table.current_row()["id"] == adapter_id)
    await pilot.press("enter")
    detail = screen.query_one(AdapterDetail)
    await until(pilot, lambda: f"#{adapter_id} " in _said(detail.query_one("#detail-facts")))
    return detail


def _facts(detail: AdapterDetail) -> dict[str, str]:
    """The detail's `key: value` lines (the first of each key)."""
    facts: dict[str, str] = {}
    for line in _said(detail.query_one("#detail-facts")).splitlines():
        key, colon, value = line.strip().partition(":")
        if colon:
            facts.setdefault(key, value.strip())
    return facts


def _check_identity(detail: AdapterDetail, task: str) -> dict[str, str]:
    facts = _facts(detail)
    said = _said(detail.query_one("#detail-facts"))
    assert facts["task"] == task and facts["family"] in registry.task(task).family_names(), said
    assert facts["base model"] == template_values(task)["model"]["pretrained"], said
    assert "warning" not in facts and "not LoRA pairs" not in said, said
    assert "the file says nothing about itself" not in _said(detail.query_one("#detail-metadata"))
    return facts


@pytest.mark.parametrize("task", TASKS)
async def test_the_library_detail_of_a_runs_adapter_names_its_task_family_base_and_run(task, trained, trained_copy):
    run_id = trained["adapters"][task][0]["run"]
    [(adapter_id,)] = _query(trained_copy, "SELECT id FROM adapters WHERE source_run = ?", run_id)
    records = _run_records(trained_copy, run_id)
    app = LoratuiApp(screen="library")
    async with app.run_test(size=SIZE) as pilot:
        detail = await _adapter_detail(pilot, adapter_id)
        facts = _check_identity(detail, task)
        assert facts["trained by run"] == f"{run_id} (finished, step 2/2)"
        chart = detail.query_one(LossChart)
        await until(pilot, lambda: chart.points == records["steps"])
        for metric in records["eval"]:
            assert re.fullmatch(r"[-\d.e]+ \(base model [-\d.e]+\)", facts[f"eval {metric}"]), facts
        texts = [sample for sample in records["samples"] if sample[3] is not None]
        if texts:
            said = _words(_said(detail.query_one("#detail-texts")))
            assert detail.query_one("#detail-texts").display and _words(texts[-1][3]) in said
        elif records["samples"]:
            await until(pilot, lambda: detail.query(".detail-image"))
        assert not _nones(app.screen) and not _failures(app)


@pytest.mark.parametrize("task", TASKS)
async def test_the_library_detail_of_an_imported_adapter_names_its_task_family_and_base(task, task_home):
    home = task_home(task)
    [(adapter_id,)] = _query(home, "SELECT id FROM adapters WHERE name = ?", f"{task}-a")
    app = LoratuiApp(screen="library")
    async with app.run_test(size=SIZE) as pilot:
        detail = await _adapter_detail(pilot, adapter_id)
        _check_identity(detail, task)
        assert not _nones(app.screen) and not _failures(app)
