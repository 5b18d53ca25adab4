"""Step charts on textual-plotext. They redraw only when handed new data (a timer decides how often), each
line cut down to what the chart's width can show, its lows and highs kept (loratui/series.py).

The axes are loratui's, not plotext's guesses: whole steps, round values, ends on ticks (loratui/axes.py), worked
out again at each render for the size of that moment. The title and the legend are a header above the plot, so
a legend never covers a line."""

import math
import time
from collections.abc import Sequence

from plotext._utility import colorize
from rich.text import Text
from textual_plotext import PlotextPlot

from loratui.axes import MIN_SPAN, step_ticks, value_ticks
from loratui.series import decimate

SMOOTHING_STEPS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
_DEFAULT_POINTS = 400
_LEGEND_MARK = "━━"
_LEGEND_GAP = 2
_X_LABEL_COLUMNS = 10  # room for one step label and the gap to the next
_Y_TICK_ROWS = 3


def smooth(values: Sequence[float], factor: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's), skipping NaNs so one bad step leaves no gap."""
    if factor <= 0:
        return list(values)
    out, last, weight = [], 0.0, 0.0
    for value in values:
        if math.isfinite(value):
            last = factor * last + (1 - factor) * value
            weight = factor * weight + (1 - factor)
        out.append(last / weight if weight else math.nan)
    return out


class StepChart(PlotextPlot):
    """Lines of (step, value) with a title; `points` counts the data it was given. Drawing is slow (plotext,
    then its ANSI output turned into Textual strips), so it is timed: see take_cost. `min_span`: the narrowest
    value range, as a share of the values' magnitude (loratui.axes.value_ticks)."""

    def __init__(self, title: str, *, min_span: float = MIN_SPAN, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.min_span = min_span
        self.points = 0
        self._cost = 0.0
        self._lines: list[tuple[str, Sequence[int], Sequence[float]]] = []
        self._legend: list[tuple[str, str]] = []  # (label, its line's plotext colour), only for several lines
        self._extent: tuple[int, int, float, float] | None = None  # first and last step, lowest and highest value
        self._plotted_width = 0

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def render_lines(self, crop):
        start = time.perf_counter()
        try:
            return super().render_lines(crop)
        finally:
            self._cost += time.perf_counter() - start

    @property
    def last_step(self) -> int | None:
        """The last step of the data handed over."""
        return max((xs[-1] for _, xs, _ in self._lines if len(xs)), default=None)

    def take_cost(self) -> float:
        """Seconds spent drawing this chart since the last call."""
        cost, self._cost = self._cost, 0.0
        return cost

    def show(self, title: str, lines: list[tuple[str, Sequence[int], Sequence[float]]]) -> None:
        self.title = title
        self._lines = lines
        self.points = max((len(xs) for _, xs, _ in lines), default=0)
        self._draw()

    def _draw(self) -> None:
        self._hand_lines()
        self.refresh()

    def _hand_lines(self) -> None:
        """Hand the lines to plotext, thinned for the width the chart has now."""
        plt = self.plt
        plt.clear_data()
        if self.is_mounted:
            # Lines take their colours from the plot's theme when plotted, and textual-plotext sets the theme
            # only as it renders: set it first, or the first lines drawn keep plotext's own colours.
            plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.title(None)
        self._plotted_width = self.size.width
        limit = 2 * self.size.width if self.size.width else _DEFAULT_POINTS
        drawn, steps, values = [], [], []
        for label, xs, ys in self._lines:
            x, y = decimate(xs, ys, limit)
            if x:
                plt.plot(x, y, marker="braille")  # no label: plotext would draw the legend over the lines
                drawn.append((label, plt.monitor.color[-1][0]))
                steps += (x[0], x[-1])
                values += (min(y), max(y))
        self._legend = drawn if len(drawn) > 1 else []
        self._extent = (min(steps), max(steps), min(values), max(values)) if drawn else None

    def header(self, width: int) -> list[Text]:
        """The title, then each line's mark in its colour and its label, centred in as many rows as `width`
        needs; an entry is never split across rows."""
        title = self.title if self.points else f"{self.title}: waiting for the first step"
        entries = [Text(title)]
        for label, color in self._legend:
            entries.append(Text.from_ansi(colorize(_LEGEND_MARK, color)) + Text(f" {label}"))
        rows = [entries[0]]
        for entry in entries[1:]:
            if rows[-1].cell_len + _LEGEND_GAP + entry.cell_len <= width:
                rows[-1] = rows[-1] + Text(" " * _LEGEND_GAP) + entry
            else:
                rows.append(entry)
        for row in rows:
            row.align("center", width)
        return rows

    def render(self):
        width, height = self.size
        if width != self._plotted_width:  # plotted before layout (or resized): the thinning and axes follow the size
            self._hand_lines()
        header = self.header(max(1, width))
        plot_height = max(1, height - len(header))
        self._set_axes(width, plot_height)
        plt = self.plt
        plt.plotsize(width, plot_height)
        plt._set_size(width, plot_height)  # as textual-plotext's own render does, or resizing goes wrong
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        return Text("\n").join([*header, Text.from_ansi(plt.build())])

    def _set_axes(self, width: int, height: int) -> None:
        """Ticks for this size: as many as their labels have room for, the axes ending on them."""
        plt = self.plt
        if self._extent is None:  # an empty frame: earlier data's ticks must not stay
            plt.xticks([], [])
            plt.yticks([], [])
            plt.xlim(None, None)
            plt.ylim(None, None)
            return
        first, last, low, high = self._extent
        steps = step_ticks(first, last, max(2, min(8, width // _X_LABEL_COLUMNS - 1)))
        plt.xticks(steps, [str(step) for step in steps])
        plt.xlim(steps[0], steps[-1])
        rows = height - 3  # inside the frame, above the step labels
        # More ticks than rows put two labels on one row, and which one plotext shows varies between processes.
        intervals = min(6, max(2 if rows >= 3 else 1, rows // _Y_TICK_ROWS))
        ticks, labels = value_ticks(low, high, intervals, self.min_span)
        plt.yticks(ticks, labels)
        plt.ylim(ticks[0], ticks[-1])


class LossChart(StepChart):
    """Raw loss, with the smoothed curve over it when smoothing is on."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("loss", id=id)
        self.smoothing = 0.9

    def show_loss(self, steps: Sequence[int], loss: Sequence[float]) -> None:
        title = f"loss (smoothing {self.smoothing:g})"
        if self.smoothing > 0:
            self.show(title, [("raw", steps, loss), ("smoothed", steps, smooth(loss, self.smoothing))])
        else:
            self.show(title, [("loss", steps, loss)])

    def cycle_smoothing(self) -> float:
        """The next stronger smoothing, wrapping round to none."""
        stronger = [value for value in SMOOTHING_STEPS if value > self.smoothing]
        self.smoothing = stronger[0] if stronger else SMOOTHING_STEPS[0]
        return self.smoothing
