"""Chart axes people can read: ticks at round numbers (1, 2 or 5 times a power of ten), each axis starting and
ending on a tick so its ends are labelled; steps in whole numbers; values with at most three significant digits
over a range never so narrow that it magnifies noise (an RSS that wobbles by a few kilobytes stays flat).

Pure functions: the charts (loratui/widgets/charts.py) hand the results to plotext as its ticks and limits."""

import math
from collections.abc import Sequence

SIGNIFICANT = 3  # digits a value tick may show
MIN_SPAN = 0.02  # a value axis spans at least this share of the values' magnitude
MEMORY_MIN_SPAN = 0.05  # memory moves by allocator noise; a smaller change is not worth a chart's height
_MULTIPLES = (1, 2, 5)


def _round_steps(smallest: float):
    """Round spacings (1, 2, 5 times a power of ten) from the largest not above `smallest`, ascending."""
    power = math.floor(math.log10(smallest))
    while True:
        for multiple in _MULTIPLES:
            yield multiple, power
        power += 1


def _value(k: int, multiple: int, power: int) -> float:
    """k * multiple * 10**power, rounded as its decimal reads (0.1 * 3 is 0.3, not 0.30000000000000004)."""
    return k * multiple * 10**power if power >= 0 else k * multiple / 10**-power


def _span_ticks(low: float, high: float, count: int, smallest: float) -> tuple[list[float], int]:
    """Ticks from a round number at or below `low` to one at or above `high`, at the smallest round spacing of
    at least `smallest` that needs at most `count` intervals; with the spacing's power of ten."""
    for multiple, power in _round_steps(smallest):
        step = _value(1, multiple, power)
        if step < smallest * (1 - 1e-9):
            continue
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last == first:
            last += 1
        if last - first <= count:
            return [_value(k, multiple, power) for k in range(first, last + 1)], power
    raise AssertionError("unreachable: spacings grow without bound")


def step_ticks(first: int, last: int, count: int) -> list[int]:
    """Whole-number ticks over steps first..last, in at most `count` intervals; the first at or below `first`,
    the last at or above `last`, so the axis ends on a labelled tick. One step alone ends the axis too."""
    if last <= first:
        first, last = (first - 1, first) if first > 0 else (first, first + 1)
    span = last - first
    ticks, _ = _span_ticks(first, last, max(1, count), max(1.0, span / max(1, count)))
    return [int(tick) for tick in ticks]


def value_ticks(low: float, high: float, count: int, min_span: float = MIN_SPAN) -> tuple[list[float], list[str]]:
    """(ticks, labels) over low..high in at most `count` intervals. The range is widened about its middle to at
    least `min_span` of the values' magnitude (not below zero when the values are not), and the spacing is never
    finer than the third significant digit, so no label needs more than three."""
    magnitude = max(abs(low), abs(high))
    if magnitude == 0:
        low, high, magnitude = 0.0, 1.0, 1.0
    need = min_span * magnitude
    if high - low < need:
        middle = (low + high) / 2
        wide_low = middle - need / 2
        low, high = (0.0, need) if wide_low < 0 <= low else (wide_low, middle + need / 2)
    finest = 10 ** (math.floor(math.log10(magnitude)) - SIGNIFICANT + 1)
    ticks, power = _span_ticks(low, high, max(1, count), max(finest, (high - low) / max(1, count)))
    return ticks, value_labels(ticks, power)


def value_labels(ticks: Sequence[float], power: int) -> list[str]:
    """Labels of ticks spaced at a multiple of 10**power: fixed decimals as many as the spacing needs, or
    scientific ("2e-5", "1.2e-4") for values too small or large to read that way."""
    top = max(abs(tick) for tick in ticks)
    if top == 0 or 1e-3 <= top < 1e6:
        decimals = max(0, -power)
        return [f"{tick:.{decimals}f}" for tick in ticks]
    return [_scientific(tick, power) for tick in ticks]


def _scientific(value: float, power: int) -> str:
    """`value`, a multiple of 10**power, in as few mantissa digits as it has."""
    if value == 0:
        return "0"
    decimals = max(0, math.floor(math.log10(abs(value)) + 1e-9) - power)
    mantissa, exponent = f"{value:.{decimals}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def memory_unit(largest_gib: float) -> tuple[float, str]:
    """(factor from GiB, unit name): MiB below one GiB, so 0.53 GiB reads 543 MiB."""
    return (1024.0, "MiB") if largest_gib < 1 else (1.0, "GiB")
