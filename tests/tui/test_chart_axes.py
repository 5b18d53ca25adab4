"""Chart axes: whole-number steps, the last step inside a labelled end, value ticks of at most three significant
digits over a range that does not zoom into noise; and in the run detail, every chart drawn that way with its
legend above the plot, never over a line."""

import json
import math
import re

import pytest

from loratui.app import LoratuiApp
from loratui.axes import MEMORY_MIN_SPAN, memory_unit, step_ticks, value_ticks
from loratui.widgets.charts import LossChart, StepChart

from .conftest import add_run, script_events, until


def _significant(label: str) -> int:
    digits = re.sub(r"e.*", "", label).replace("-", "").replace(".", "").lstrip("0").rstrip("0")
    return len(digits)


@pytest.mark.parametrize("first, last, count", [(1, 30, 4), (1, 33, 4), (0, 152, 5), (1, 1, 4), (5, 7, 8),
                                                (1, 200_000, 6), (17, 18, 3), (1, 999, 1)])
def test_step_ticks_are_round_whole_numbers_ending_on_or_past_the_last_step(first, last, count):
    ticks = step_ticks(first, last, count)
    assert all(isinstance(tick, int) for tick in ticks)
    assert ticks[0] <= first and ticks[-1] >= last and len(ticks) - 1 <= count
    spacing = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(spacing) == 1
    gap = spacing.pop()
    assert gap >= 1 and int(str(gap).rstrip("0") or 0) in (1, 2, 5)
    assert ticks[-1] - last < gap  # no more than one interval past the data


def test_step_ticks_of_a_few_steps_are_each_step():
    assert step_ticks(1, 5, 8) == [1, 2, 3, 4, 5]
    assert step_ticks(1, 152, 4) == [0, 50, 100, 150, 200]


@pytest.mark.parametrize("low, high", [(1.1464, 1.1512), (0.6, 0.61), (614.4, 624.6), (0.0, 1e-4), (1e-2, 1e-2),
                                       (0.05, 0.55), (7.1, 7.1), (0.0, 0.0), (-0.3, 0.2), (3e-6, 9e-6),
                                       (2.5e6, 2.6e6)])
def test_value_ticks_cover_the_values_with_three_significant_digits_at_most(low, high):
    ticks, labels = value_ticks(low, high, 5)
    assert ticks[0] <= low and ticks[-1] >= high and ticks[0] < ticks[-1] and len(ticks) <= 6
    assert all(_significant(label) <= 3 for label in labels), labels
    assert len(set(labels)) == len(labels)
    assert [float(label) for label in labels] == pytest.approx(ticks, rel=1e-9, abs=1e-15)


def test_a_flat_memory_line_gets_a_range_of_a_few_percent_not_its_noise():
    wobble = 678.0, 678.0 + 5e-5  # an RSS in MiB that moves by 50 bytes
    ticks, labels = value_ticks(*wobble, 4, MEMORY_MIN_SPAN)
    assert ticks[-1] - ticks[0] >= MEMORY_MIN_SPAN * 678
    assert all("." not in label for label in labels), labels  # whole MiB: nothing zoomed to decimals
    assert value_ticks(0.0, 0.0, 4, MEMORY_MIN_SPAN)[0][0] == 0  # never below zero for values that are not


def test_memory_below_a_gib_is_shown_in_mib():
    assert memory_unit(0.53) == (1024.0, "MiB")
    assert memory_unit(7.1) == (1.0, "GiB")


def _rendered(chart: StepChart) -> tuple[list[str], list[str]]:
    """(header lines, plot lines) as the chart draws them now."""
    lines = chart.render().plain.rstrip("\n").split("\n")
    header = len(chart.header(chart.size.width))
    return lines[:header], lines[header:]


def _x_labels(plot: list[str]) -> list[str]:
    return plot[-1].split()


def _y_labels(plot: list[str]) -> list[str]:
    return [line.split("┤")[0].strip() for line in plot if "┤" in line]


@pytest.mark.parametrize("size, memory", [((200, 50), "cuda"), ((120, 40), "rss")])
async def test_run_detail_charts_have_whole_step_ticks_round_values_and_the_legend_above_the_plot(db, size, memory):
    run_dir = add_run(db, "axes", status="finished", steps=33, total=100)
    seq = script_events(run_dir, 33, memory=memory)
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        for step, accuracy in ((0, 0.5), (10, 0.81), (20, 0.9), (30, 0.95)):
            seq += 1
            handle.write(json.dumps({"v": 1, "seq": seq, "time": 1.0, "type": "eval", "step": step, "epoch": 0,
                                     "metrics": {"accuracy": accuracy, "eval_loss": 1 - accuracy}}) + "\n")
    app = LoratuiApp()
    async with app.run_test(size=size) as pilot:
        app.open_run("axes")
        await pilot.pause()
        screen = app.screen
        loss = screen.query_one(LossChart)
        evaluated = screen.query_one("#eval-chart", StepChart)
        charts = [loss, screen.query_one("#lr-chart", StepChart), screen.query_one("#memory-chart", StepChart),
                  evaluated]
        await until(pilot, lambda: all(chart.points == 33 for chart in charts[:3]) and evaluated.points == 4)
        await pilot.pause()
        for chart in charts:
            header, plot = _rendered(chart)
            steps = _x_labels(plot)
            assert steps and all(re.fullmatch(r"\d+", step) for step in steps), (chart.id, plot[-1])
            # the last step is inside the last labelled tick, one interval at most from it
            assert int(steps[-1]) >= chart.last_step > int(steps[-2]), (chart.id, steps)
            values = _y_labels(plot)
            assert len(values) >= 2 and all(_significant(value) <= 3 for value in values), (chart.id, values)
            assert chart.title in " ".join(header)
        for chart, labels in ((loss, ("raw", "smoothed")), (evaluated, ("accuracy", "eval_loss"))):
            header, plot = _rendered(chart)
            assert all(label in " ".join(header) for label in labels), header
            assert not any(label in line for label in labels for line in plot)  # nothing written over the lines
        memory_chart = charts[2]
        if memory == "rss":  # 0.6 GiB and a little more: MiB, over a few percent, not five decimals
            assert memory_chart.title == "process RSS (MiB)"
            values = [float(value) for value in _y_labels(_rendered(memory_chart)[1])]
            assert max(values) - min(values) >= 0.05 * 615 and max(values) < 1024
        else:  # two GPUs' allocated, reserved and peak: six lines, each named in the header, none in the plot
            header, plot = _rendered(memory_chart)
            assert memory_chart.title == "VRAM per GPU (GiB)"
            for label, _, _ in memory_chart._lines:
                assert label in " ".join(header) and not any(label in line for line in plot)


async def test_a_chart_of_one_line_has_no_legend_and_a_resize_keeps_the_ticks_whole(db):
    run_dir = add_run(db, "one", status="finished", steps=152, total=152)
    script_events(run_dir, 152, total=152, end="run_finished", sample=False)
    app = LoratuiApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.open_run("one")
        await pilot.pause()
        lr = app.screen.query_one("#lr-chart", StepChart)
        await until(pilot, lambda: lr.points == 152)
        await pilot.pause()
        header, _ = _rendered(lr)
        assert [line.strip() for line in header] == ["learning rate"]
        await pilot.resize_terminal(130, 36)
        await pilot.pause()
        steps = _x_labels(_rendered(lr)[1])
        assert all(re.fullmatch(r"\d+", step) for step in steps) and int(steps[-1]) >= 152, steps
        assert not any(math.isclose(float(step), 152.5) for step in steps)
