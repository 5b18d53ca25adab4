"""Chart series kept small however long the run: steps fall into buckets, and each bucket keeps its lowest
and its highest point, so a spike still shows when 200,000 steps are drawn in a few hundred columns.

The same buckets are built three ways: folded one event at a time (RunHistory), read from the library's
step tables in SQL (library_series, a run's past without holding its rows), and from a list of points
(decimate, what a chart of a given width can draw). Runs of up to `capacity` steps are kept exactly.
"""

import math
from bisect import bisect_left
from collections.abc import Sequence

from loratui.db.metrics import Source, source

CAPACITY = 1024  # buckets per series: two points each, several times the points of the widest chart


class Decimated:
    """(step, value) points in buckets of `width` steps, at most `capacity` of them: when one more would not
    fit, the width doubles and neighbouring buckets merge. Non-finite values are left out; the newest point
    is kept too, so the line ends where the run is."""

    __slots__ = ("width", "capacity", "last", "_buckets")

    def __init__(self, width: int = 1, capacity: int = CAPACITY) -> None:
        self.width = max(1, width)
        self.capacity = capacity
        self.last: tuple[int, float] | None = None
        self._buckets: list[list] = []  # [index, low_step, low, high_step, high], ordered by index

    @classmethod
    def from_buckets(cls, width: int, buckets, last: tuple[int, float] | None = None,
                     capacity: int = CAPACITY) -> "Decimated":
        """Rows of (index, low_step, low, high_step, high), ordered by index, as library_series reads them."""
        series = cls(width, capacity)
        series._buckets = [list(bucket) for bucket in buckets]
        series.last = last
        series._coarsen()
        return series

    def add(self, step: int, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        if self.last is None or step >= self.last[0]:
            self.last = (step, value)
        index = step // self.width
        buckets = self._buckets
        if buckets and buckets[-1][0] == index:
            _widen(buckets[-1], step, value, step, value)
        elif not buckets or buckets[-1][0] < index:
            buckets.append([index, step, value, step, value])
        else:  # an earlier step again (an eval beside the steps): rare, so a search is fine
            at = bisect_left(buckets, index, key=lambda bucket: bucket[0])
            if buckets[at][0] == index:
                _widen(buckets[at], step, value, step, value)
            else:
                buckets.insert(at, [index, step, value, step, value])
        if len(buckets) > self.capacity:
            self._coarsen()

    def cut(self, step: int) -> None:
        """Forget the points after `step` (a resume redoes them). A bucket that straddles it keeps what of its
        low and high came before; the true extremes of that part are not known any more."""
        kept = []
        for bucket in self._buckets:
            index, low_step, low, high_step, high = bucket
            if low_step > step and high_step > step:
                continue
            if low_step > step:
                bucket[1:3] = high_step, high
            elif high_step > step:
                bucket[3:5] = low_step, low
            kept.append(bucket)
        self._buckets = kept
        if self.last is not None and self.last[0] > step:
            self.last = None
            steps, values = self.points()
            self.last = (steps[-1], values[-1]) if steps else None

    def points(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """(steps, values) in step order: each bucket's low and high, and the newest point."""
        pairs = []
        for _, low_step, low, high_step, high in self._buckets:
            pairs.append((low_step, low))
            if (high_step, high) != (low_step, low):
                pairs.insert(len(pairs) - (high_step < low_step), (high_step, high))
        if self.last is not None and self.last not in pairs[-3:]:
            at = len(pairs)
            while at and pairs[at - 1][0] > self.last[0]:
                at -= 1
            pairs.insert(at, self.last)
        return tuple(step for step, _ in pairs), tuple(value for _, value in pairs)

    def scale(self, factor: float) -> "Decimated":
        """The same points with values times `factor` (bytes to GiB), in place."""
        for bucket in self._buckets:
            bucket[2] *= factor
            bucket[4] *= factor
        if self.last is not None:
            self.last = (self.last[0], self.last[1] * factor)
        return self

    def __len__(self) -> int:
        return len(self.points()[0])

    def _coarsen(self) -> None:
        while len(self._buckets) > self.capacity:
            self.width *= 2
            merged: list[list] = []
            for index, low_step, low, high_step, high in self._buckets:
                if merged and merged[-1][0] == index // 2:
                    _widen(merged[-1], low_step, low, high_step, high)
                else:
                    merged.append([index // 2, low_step, low, high_step, high])
            self._buckets = merged


def _widen(bucket: list, low_step: int, low: float, high_step: int, high: float) -> None:
    """Take another bucket's (or point's) extremes into `bucket`; on a tie the earlier step stays."""
    if low < bucket[2] or (low == bucket[2] and low_step < bucket[1]):
        bucket[1:3] = low_step, low
    if high > bucket[4] or (high == bucket[4] and high_step < bucket[3]):
        bucket[3:5] = high_step, high


def width_for(steps: int | None, capacity: int = CAPACITY) -> int:
    """The bucket width (a power of two) that holds a run of `steps` steps without merging."""
    width = 1
    while steps and steps > width * capacity:
        width *= 2
    return width


def decimate(steps: Sequence[int], values: Sequence[float], limit: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """At most about `limit` of the points, lows, highs and the last kept; non-finite values dropped."""
    series = Decimated(width_for(steps[-1] - steps[0] + 1 if steps else 0, max(1, limit // 2)), max(1, limit // 2))
    for step, value in zip(steps, values, strict=False):
        series.add(step, value)
    return series.points()


def library_series(db, run_id: str, key: str, width: int, up_to: int, capacity: int = CAPACITY) -> Decimated:
    """A metric of a run (steps up to `up_to`) from the library, bucketed in SQL: only the buckets' rows come
    into Python, whatever the run's length. Each bucket is a range seek on the primary key; its extremes'
    steps are found in the same pass (a bare column beside min() or max() comes from that row, SQLite's
    rule), then their values looked up (a GROUP BY on step / width would sort every row first)."""
    where = source(key)
    params = {"run": run_id, "width": width, "up_to": up_to, **where.params}
    rows = db.execute(_buckets(where), params).fetchall()
    last = db.execute(f"SELECT step, {where.column} FROM {where.table} WHERE run_id = :run {where.where} "
                      f"AND step <= :up_to AND {where.column} IS NOT NULL ORDER BY step DESC LIMIT 1", params).fetchone()
    buckets = [(index, int(low_step), low, int(high_step), high) for index, low_step, low, high_step, high in rows]
    return Decimated.from_buckets(width, buckets, tuple(last) if last else None, capacity)


def _buckets(where: Source) -> str:
    value, rows = where.column, f"FROM {where.table} WHERE run_id = :run {where.where}"
    in_bucket = f"{rows} AND {value} IS NOT NULL AND step BETWEEN i * :width AND min(i * :width + :width - 1, :up_to)"
    value_at = f"SELECT {value} {rows} AND step = "
    return f"""
WITH RECURSIVE bucket(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bucket WHERE i < :up_to / :width),
extremes(i, low_step, high_step) AS MATERIALIZED (
    SELECT i, (SELECT step + 0 * min({value}) {in_bucket}), (SELECT step + 0 * max({value}) {in_bucket}) FROM bucket)
SELECT i, low_step, ({value_at}low_step), high_step, ({value_at}high_step) FROM extremes
WHERE low_step IS NOT NULL"""
