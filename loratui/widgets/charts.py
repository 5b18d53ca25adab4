"""Step charts on textual-plotext. They redraw only when handed new data (a timer decides how often), each
line cut down to what the chart's width can show, its lows and highs kept (loratui/series.py)."""

import math
import time
from collections.abc import Sequence

from textual_plotext import PlotextPlot

from loratui.series import decimate

SMOOTHING_STEPS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
_DEFAULT_POINTS = 400


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
    then its ANSI output turned into Textual strips), so it is timed: see take_cost."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.points = 0
        self._cost = 0.0
        self._lines: list[tuple[str, Sequence[int], Sequence[float]]] = []

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
        plt = self.plt
        plt.clear_data()
        if self.is_mounted:
            # Lines take their colours from the plot's theme when plotted, and textual-plotext sets the theme
            # only as it renders: set it first, or the first lines drawn keep plotext's own colours.
            plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.title(self.title if self.points else f"{self.title}: waiting for the first step")
        limit = 2 * self.size.width if self.size.width else _DEFAULT_POINTS
        for label, xs, ys in self._lines:
            x, y = decimate(xs, ys, limit)
            if x:
                plt.plot(x, y, label=label, marker="braille")
        self.refresh()


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
