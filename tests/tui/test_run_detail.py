"""The run detail follows a scripted event stream: charts get points, samples and log lines arrive; long
log lines wrap; another run's sample never lingers."""

import json
import os

from textual.widgets import Static

from engine.liveness import process_start_time
from loratui.app import LoratuiApp
from loratui.history import RunHistory
from loratui.messages import RunProgressed
from loratui.widgets.charts import LossChart, StepChart
from loratui.widgets.log_view import WrappedLog
from loratui.widgets.sample_panel import SamplePanel

from .conftest import (
    T0,
    add_run,
    script_completions,
    script_events,
    settings_saved,
    step_event,
    until,
    write_sample,
)


def _live_run(db, run_id="live"):
    """A running run whose recorded process is this test's own, so it counts as alive."""
    return add_run(db, run_id, status="running", total=100, pid=os.getpid(),
                   pid_start=process_start_time(os.getpid()))


async def test_charts_samples_and_log_follow_the_event_stream(db):
    run_dir = _live_run(db)
    seq = script_events(run_dir, 30, memory="cuda")
    (run_dir / "run.log").write_text("loading builtin:tiny-sd\n")
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("live")
        await pilot.pause()
        screen = app.screen
        loss, lr = screen.query_one(LossChart), screen.query_one("#lr-chart", StepChart)
        memory = screen.query_one("#memory-chart", StepChart)
        await until(pilot, lambda: loss.points == 30)
        assert lr.points == 30 and memory.points == 30
        assert memory.title == "VRAM per GPU (GiB)" and len(memory._lines) == 6
        assert "step 30/100 (30%)" in str(screen.query_one("#run-numbers").render())
        assert "step 20: a red circle" in str(screen.query_one("#sample-caption").render())
        assert screen.query_one(SamplePanel).query_one("#sample-image").image is not None

        script_events(run_dir, 20, first_step=31, seq=seq, memory="cuda")
        with open(run_dir / "run.log", "a") as handle:
            handle.write("saved checkpoint-50\n")
        await until(pilot, lambda: loss.points == 50)
        numbers = str(screen.query_one("#run-numbers").render())
        assert "step 50/100 (50%)" in numbers and "2.00 steps/s" in numbers and "ETA 0:00:25" in numbers
        assert "step 40: a red circle" in str(screen.query_one("#sample-caption").render())
        await until(pilot, lambda: "saved checkpoint-50" in screen.query_one(WrappedLog).kept)
        with open(run_dir / "events.jsonl", "a") as handle:
            handle.write('{"v": 1, "seq": 999, "time": 0, "type": "log", "level": "warning", "message": "NaN skipped"}\n')
        await until(pilot, lambda: "warning: NaN skipped" in screen.query_one(WrappedLog).kept)


async def test_a_cpu_run_charts_process_rss(db):
    run_dir = add_run(db, "cpu", status="finished", steps=10, total=10)
    script_events(run_dir, 10, total=10, end="run_finished")
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("cpu")
        await pilot.pause()
        memory = app.screen.query_one("#memory-chart", StepChart)
        await until(pilot, lambda: memory.points == 10)
        assert memory.title == "process RSS (MiB)"  # 0.6 GiB reads 615 MiB
        assert "ETA" not in str(app.screen.query_one("#run-numbers").render())


async def test_smoothing_control_changes_the_loss_chart_and_is_remembered(db):
    run_dir = add_run(db, "cpu", status="finished", steps=10, total=10)
    script_events(run_dir, 10, total=10, end="run_finished")
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("cpu")
        await pilot.pause()
        loss = app.screen.query_one(LossChart)
        await until(pilot, lambda: loss.points == 10)
        assert loss.smoothing == 0.9 and len(loss._lines) == 2
        await pilot.press("m")
        assert loss.smoothing == 0.95 and loss.title == "loss (smoothing 0.95)"
        await pilot.press("m", "m")
        assert loss.smoothing == 0.0 and [label for label, _, _ in loss._lines] == ["loss"]
        await settings_saved(app)
    again = LoratuiApp()
    async with again.run_test(size=(120, 40)) as pilot:
        again.open_run("cpu")
        await pilot.pause()
        assert again.screen.query_one(LossChart).smoothing == 0.0


async def test_bursts_of_updates_are_coalesced_into_a_few_redraws(db, monkeypatch, tmp_path):
    add_run(db, "burst", status="finished", steps=0, total=1000)
    draws = []
    original = LossChart.show_loss
    monkeypatch.setattr(LossChart, "show_loss", lambda self, s, v: (draws.append(len(s)), original(self, s, v)))
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("burst")
        await pilot.pause()
        screen = app.screen
        await until(pilot, lambda: screen.view is not None)
        history = RunHistory(tmp_path)
        row = dict(screen.view.row)
        for step in range(1, 501):
            history.add(step_event(step, step, 1000))
            screen.post_message(RunProgressed(history.view("burst", row)))
        await until(pilot, lambda: draws and draws[-1] == 500)
        assert len(draws) <= 4


async def test_eval_metrics_get_a_chart_only_when_the_run_evaluates(db):
    import json

    run_dir = _live_run(db)
    seq = script_events(run_dir, 20)
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("live")
        await pilot.pause()
        screen = app.screen
        chart = screen.query_one("#eval-chart", StepChart)
        await until(pilot, lambda: screen.query_one(LossChart).points == 20)
        assert not chart.display  # no [eval]: the room stays with the other charts
        with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
            for step, accuracy in ((0, 0.5), (10, 0.8), (20, 0.95)):
                seq += 1
                handle.write(json.dumps({"v": 1, "seq": seq, "time": 1.0, "type": "eval", "step": step, "epoch": 0,
                                         "metrics": {"accuracy": accuracy, "eval_loss": 1 - accuracy},
                                         "best": step > 0}) + "\n")
        await until(pilot, lambda: chart.points == 3)
        assert chart.display and [label for label, _, _ in chart._lines] == ["accuracy", "eval_loss"]
        assert list(chart._lines[0][2]) == [0.5, 0.8, 0.95]


async def test_another_run_without_samples_shows_no_image_of_the_last_one(db):
    with_samples = add_run(db, "drawn", status="finished", steps=20, total=20)
    script_events(with_samples, 20, total=20, end="run_finished")
    add_run(db, "bare", status="finished", steps=0, total=20)
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("drawn")
        await pilot.pause()
        panel = app.screen.query_one(SamplePanel)
        await until(pilot, lambda: panel.query("#sample-image"))
        app.open_run("bare")
        await until(pilot, lambda: app.screen.view is not None and app.screen.view.run_id == "bare")
        await until(pilot, lambda: "no samples yet" in str(panel.query_one("#sample-caption").render()))
        await pilot.pause()
        assert not panel.query("#sample-image")


async def test_long_log_lines_wrap_to_the_pane_and_again_when_it_changes_width(db):
    run_dir = add_run(db, "chatty", status="finished", steps=1, total=1)
    long_line = "loading " + " ".join(f"shard-{n:03d}" for n in range(12)) + " done"  # 115 characters
    (run_dir / "run.log").write_text(f"start\n{long_line}\n")
    app = LoratuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run("chatty")
        await pilot.pause()
        log = app.screen.query_one(WrappedLog)
        await until(pilot, lambda: list(log.kept) == ["start", long_line])
        await pilot.pause()

        def shown() -> list[str]:
            return [strip.text.rstrip() for strip in log.lines]

        width = log.scrollable_content_region.width
        assert width < len(long_line) and len(shown()) > 2
        assert " ".join(shown()[1:]) == long_line and all(len(line) <= width for line in shown())
        await pilot.resize_terminal(200, 50)
        await until(pilot, lambda: log.scrollable_content_region.width > width)
        await pilot.pause()
        assert " ".join(shown()[1:]) == long_line and len(shown()) < 2 + len(long_line) // width


async def test_a_text_task_shows_its_completions_newest_first_and_wrapped(db):
    run_dir = _live_run(db, "chat")
    seq = script_completions(run_dir, script_events(run_dir, 10, sample=False), 5, ["early one", "early two"])
    long_answer = " ".join(f"word{n:02d}" for n in range(40))  # 279 characters: wider than the pane
    seq = script_completions(run_dir, seq, 10, [long_answer, "late two"])
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("chat")
        await pilot.pause()
        panel = app.screen.query_one(SamplePanel)
        text = panel.query_one("#sample-text", Static)

        def shown() -> str:
            return str(text.render())

        await until(pilot, lambda: "late two" in shown())
        assert shown().index("step 10  question 0\n-> " + long_answer) < shown().index("late two") \
            < shown().index("step 5  question 0\n-> early one") < shown().index("early two")
        assert "newest first (step 10)" in str(panel.query_one("#sample-caption").render())
        assert not panel.query("#sample-image")
        await pilot.pause()
        assert text.size.width < len(long_answer) and text.size.height > shown().count("\n") + 1  # wrapped

        script_completions(run_dir, seq, 15, ["newest"])
        await until(pilot, lambda: shown().startswith("step 15  question 0\n-> newest"))



def _base_sample(run_dir, prompt="a red circle") -> int:
    """The step-0 sample a text-to-image run makes before training: the base model's."""
    write_sample(run_dir / "samples" / "step-000000-0.png", 5)
    with open(run_dir / "events.jsonl", "w") as handle:
        handle.write(json.dumps({"v": 1, "seq": 1, "time": T0, "type": "sample_saved", "step": 0,
                                 "path": "samples/step-000000-0.png", "prompt": prompt}) + "\n")
    return 1


async def test_the_base_models_step_0_sample_is_shown_beside_the_latest_one(db):
    alone = add_run(db, "untrained", status="running", steps=0, total=40)
    _base_sample(alone)
    compared = add_run(db, "compared", status="finished", steps=40, total=40)
    script_events(compared, 40, total=40, end="run_finished", seq=_base_sample(compared))
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("untrained")
        await pilot.pause()
        panel = app.screen.query_one(SamplePanel)
        caption, compare = panel.query_one("#sample-caption"), panel.query_one("#sample-compare")
        await until(pilot, lambda: panel.query("#sample-image"))
        assert "step 0: a red circle" in str(caption.render())
        assert not panel.query("#sample-base") and not compare.display  # nothing to compare with yet

        app.open_run("compared")
        await until(pilot, lambda: panel.query("#sample-base") and "step 40" in str(caption.render()))
        images = panel.query_one("#sample-images")
        assert [child.id for child in images.children] == ["sample-base", "sample-image"]  # the base on the left
        base, latest = panel.query_one("#sample-base"), panel.query_one("#sample-image")
        assert base.image is not None and latest.image is not None and base.image is not latest.image
        assert compare.display and "left: the base model (step 0" in str(compare.render())
