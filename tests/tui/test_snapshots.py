"""Snapshots of the main screens at 80x24 and 200x50 (update with `pytest --snapshot-update`)."""

import os

import pytest
from textual.widgets import DataTable

from engine.liveness import process_start_time
from loratui.app import LoratuiApp
from loratui.widgets.charts import LossChart, StepChart

from .conftest import add_run, script_events, until


@pytest.fixture
def library(db):
    """One run of each status; the running one is recorded as this test process, so it stays alive."""
    me = dict(pid=os.getpid(), pid_start=process_start_time(os.getpid()))
    live = add_run(db, "20250105-shapes-r8", name="shapes rank 8", status="running", steps=40, total=100,
                   loss=0.21, created="2025-01-05T09:30:00Z", **me)
    script_events(live, 40, memory="cuda")
    (live / "run.log").write_text("".join(f"step {i} loss {0.5 / i:.4f}\n" for i in range(1, 41)))
    cpu = add_run(db, "20250104-cpu", name="cpu check", status="finished", steps=60, total=60, loss=0.12,
                  created="2025-01-04T18:00:00Z")
    script_events(cpu, 60, total=60, end="run_finished")
    (cpu / "run.log").write_text("".join(f"step {i}\n" for i in range(1, 61)) + "saved adapter\n")
    for n, status in enumerate(["stopped", "failed", "crashed", "queued"]):
        add_run(db, f"2025010{3 - n if n < 3 else 1}-{status}", name=f"{status} example", status=status,
                steps=25 * n, total=100, loss=0.3 if n else None, created=f"2025-01-0{3 - n if n < 3 else 1}T08:00:00Z")
    db["adapters"].insert({"name": "cpu-check", "path": str(cpu / "pytorch_lora_weights.safetensors"), "sha256": "a",
                           "size": 103_424, "format": "diffusers", "family": "sd1", "rank": 4, "alpha": 4.0,
                           "base_model": "builtin:tiny-sd", "source_run": "20250104-cpu",
                           "created": "2025-01-04T18:05:00Z"})
    return db


async def _runs_listed(pilot) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 6)


def _detail(run_id: str, points: int):
    async def ready(pilot) -> None:
        pilot.app.open_run(run_id)
        await pilot.pause()
        screen = pilot.app.screen
        # Every chart holds the whole series and is drawn: under load the memory chart lagged the loss one.
        await until(pilot, lambda: all(chart.points == points for chart in screen.query(StepChart) if chart.points)
                    and screen.query_one(LossChart).points == points and not screen._dirty
                    and not screen._charts_dirty)
        await pilot.pause()
    return ready


def test_runs_screen(library, snap_compare):
    assert snap_compare(LoratuiApp(), terminal_size=(80, 24), run_before=_runs_listed)


def test_runs_screen_light_and_wide(library, snap_compare):
    async def light(pilot):
        pilot.app.theme = "loratui-light"
        await _runs_listed(pilot)
    assert snap_compare(LoratuiApp(), terminal_size=(200, 50), run_before=light)


def test_run_detail_small_terminal_cuda(library, snap_compare):
    assert snap_compare(LoratuiApp(), terminal_size=(80, 24), run_before=_detail("20250105-shapes-r8", 40))


def test_run_detail_wide_terminal(library, snap_compare):
    assert snap_compare(LoratuiApp(), terminal_size=(200, 50), run_before=_detail("20250104-cpu", 60))


def test_library_screen(library, snap_compare):
    async def adapters(pilot):
        await pilot.press("4")
        await until(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 1)
    assert snap_compare(LoratuiApp(), terminal_size=(80, 24), run_before=adapters)


def test_library_screen_wide_with_detail(library, snap_compare):
    """The detail pane beside the table: facts, header summary, lineage, the run's loss curve."""
    with library.conn:
        library.conn.execute("UPDATE adapters SET path = '/library/cpu-check.safetensors', tags = '[\"shapes\"]', "
                             "trigger_words = '[\"red circle\"]', metadata = ?",
                             ['{"ss_network_dim": "4", "modelspec.title": "CPU check"}'])
        library.conn.executemany("INSERT INTO steps (run_id, step, loss) VALUES ('20250104-cpu', ?, ?)",
                                 [(step, 0.5 / step) for step in range(1, 61)])

    async def detail(pilot):
        await pilot.press("4")
        screen = pilot.app.screen
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: screen.query_one("#detail-loss").points == 60)
        await pilot.pause()
    assert snap_compare(LoratuiApp(), terminal_size=(120, 40), run_before=detail)
