"""Long runs stay light: series decimated with their extremes kept, the same from the fold and from SQL, the
run detail's past read from the library, and a finished run not read again."""

import json
import math
import os

from engine.liveness import process_start_time
from loratui import watch
from loratui.app import LoratuiApp
from loratui.history import RunHistory
from loratui.library.views import loss_curve
from loratui.runs.ingest import ingest
from loratui.series import CAPACITY, Decimated, decimate, library_series, width_for
from loratui.widgets.charts import LossChart

from .conftest import add_run, script_events, step_event, until

SPIKE, DIP = 9.0, -9.0


def _wave(step: int) -> float:
    """A decaying curve with one spike and one dip far from the ends."""
    return SPIKE if step == 3_001 else DIP if step == 4_567 else 1.0 / (1 + step / 500) + 0.01 * math.sin(step)


def _folded(steps: range, capacity: int = CAPACITY) -> Decimated:
    series = Decimated(width_for(steps[-1], capacity), capacity)
    for step in steps:
        series.add(step, _wave(step))
    return series


def test_a_long_series_keeps_its_extremes_in_step_order_and_ends_at_the_last_step():
    steps, values = _folded(range(1, 6_001), capacity=64).points()
    assert len(steps) <= 2 * 64 + 1
    assert list(steps) == sorted(steps) and steps[-1] == 6_000 and values[-1] == _wave(6_000)
    assert (3_001, SPIKE) in zip(steps, values, strict=True) and (4_567, DIP) in zip(steps, values, strict=True)
    assert all(values[steps.index(s)] == _wave(s) for s in steps)  # every point is a real one


def test_a_short_series_is_exact_and_non_finite_values_leave_no_point():
    series = Decimated()
    for step in range(1, 201):
        series.add(step, math.nan if step == 50 else float(step))
    assert series.points() == (tuple(s for s in range(1, 201) if s != 50),
                               tuple(float(s) for s in range(1, 201) if s != 50))


def test_a_resume_cuts_the_redone_steps_and_the_chart_decimation_keeps_extremes():
    series = _folded(range(1, 6_001), capacity=64)
    series.cut(4_000)
    steps, values = series.points()
    assert steps[-1] <= 4_000 and SPIKE in values and DIP not in values
    xs = list(range(10_000))
    ys = [100.0 if x == 7_777 else 0.0 for x in xs]
    drawn_x, drawn_y = decimate(xs, ys, 100)
    assert len(drawn_x) <= 101 and (7_777, 100.0) in zip(drawn_x, drawn_y, strict=True) and drawn_x[-1] == 9_999


def _run_of(db, run_id: str, steps: int, **kwargs):
    run_dir = add_run(db, run_id, status="running", total=steps)
    script_events(run_dir, steps, total=steps, sample=False, **kwargs)
    return run_dir


def test_sql_downsampling_gives_the_fold_of_the_same_steps(db):
    run_dir = _run_of(db, "long", 5_000)
    ingest(db, run_dir, "long")
    history = RunHistory(run_dir, width_for(5_000))
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        history.add(json.loads(line))
    assert history.loss.width > 1  # decimated, not exact
    assert library_series(db, "long", "loss", width_for(5_000), 5_000).points() == history.loss.points()
    assert library_series(db, "long", "lr", width_for(5_000), 5_000).points() == history.lr.points()


def test_the_library_detail_s_loss_curve_is_small_and_keeps_the_spike(db):
    add_run(db, "spiky", status="finished", total=6_000)
    with db.conn:
        db.conn.executemany("INSERT INTO steps (run_id, step, loss) VALUES ('spiky', ?, ?)",
                            [(step, _wave(step)) for step in range(1, 6_001)])
    steps, loss = loss_curve(db, "spiky", points=100)
    assert len(steps) <= 101 and steps[-1] == 6_000 and list(steps) == sorted(steps)
    assert (3_001, SPIKE) in zip(steps, loss, strict=True) and (4_567, DIP) in zip(steps, loss, strict=True)
    assert loss_curve(db, "none") == ([], [])


def test_the_watcher_reads_the_past_from_the_library_and_the_rest_from_the_file(db):
    run_dir = _run_of(db, "mixed", 3_000, end="run_finished")
    full = RunHistory(run_dir, width_for(3_000))
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        full.add(json.loads(line))
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "events.jsonl").write_text("".join(lines[:2_000]))
    ingest(db, run_dir, "mixed")  # the library holds the first 2,000 events; the file has them all
    (run_dir / "events.jsonl").write_text("".join(lines))
    watcher = watch.RunWatcher(db, "mixed")
    assert watcher.poll()
    view, expected = watcher.view(), full.view("mixed", watcher.row)
    assert view.loss == expected.loss and view.lr == expected.lr and view.memory == expected.memory
    assert view.steps_per_s == expected.steps_per_s == 2.0 and view.step == 3_000
    assert view.ended["type"] == "run_finished" and view.log_lines[-1].startswith("run finished at step 3000")


async def test_a_finished_run_is_not_read_again_until_its_files_grow(db, monkeypatch):
    run_dir = add_run(db, "done", status="finished", steps=40, total=80)
    seq = script_events(run_dir, 40, total=80, sample=False, end="run_finished")
    monkeypatch.setattr(watch, "ENDED_CHECK_S", 0.05)
    reads = []  # what the run detail's watcher reads: its row, its events, its log
    get_run = watch.get_run
    monkeypatch.setattr(watch, "get_run", lambda *args: (reads.append("row"), get_run(*args))[1])
    for tail in (watch.EventTail, watch.LogTail):
        monkeypatch.setattr(tail, "poll", lambda self, _poll=tail.poll: (reads.append(self.path.name), _poll(self))[1])
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("done")
        await pilot.pause()
        chart = app.screen.query_one(LossChart)
        await until(pilot, lambda: chart.last_step == 40)
        await pilot.pause(0.1)
        reads.clear()
        await pilot.pause(1.2)  # more than two polls of a running run
        assert reads == []
        with open(run_dir / "run.log", "a") as handle:  # a process shutting down has the last word
            handle.write("saved the adapter\n")
        await until(pilot, lambda: "saved the adapter" in app.screen.view.log_lines)
        # A resume: the row says running and the file grows; the screen follows the run again.
        with db.conn:
            db.execute("UPDATE runs SET status = 'running', pid = ?, pid_start = ? WHERE id = 'done'",
                       [os.getpid(), process_start_time(os.getpid())])
        with open(run_dir / "events.jsonl", "a") as handle:
            for step in range(41, 46):
                seq += 1
                handle.write(json.dumps(step_event(seq, step, 80)) + "\n")
        await until(pilot, lambda: app.screen.view.step == 45 and app.screen.view.row["status"] == "running")
        assert "row" in reads and "events.jsonl" in reads
