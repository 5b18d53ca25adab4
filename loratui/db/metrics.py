"""Where a run's metrics live in library.db, by the keys readers know them by (loratui/history.py charts them).

A step's own figures are columns of one `steps` row (loss, lr, ..., memory_rss on CPU), each GPU's memory a
`gpu_memory` row per step (keys gpuN_allocated, gpuN_reserved, gpuN_peak), and everything else (eval/NAME,
anything irregular) a `metrics` row per key and step. Ingest writes them; readers ask here where a key is.
"""

import re
from dataclasses import dataclass

STEP_COLUMNS = ("loss", "lr", "grad_norm", "samples_per_s", "step_time", "memory_rss")
GPU_FIELDS = ("allocated", "reserved", "peak")
_GPU_KEY = re.compile(rf"gpu(\d+)_({'|'.join(GPU_FIELDS)})")


@dataclass(frozen=True)
class Source:
    """A key's values: `column` of `table`, rows picked by run_id, step and `where` (named parameters `params`)."""

    table: str
    column: str
    where: str
    params: dict


def source(key: str) -> Source:
    if key in STEP_COLUMNS:
        return Source("steps", key, "", {})
    gpu = _GPU_KEY.fullmatch(key)
    if gpu:
        return Source("gpu_memory", gpu[2], "AND device = :device", {"device": int(gpu[1])})
    return Source("metrics", "value", "AND key = :key", {"key": key})


def gpu_key(device: int, field: str) -> str:
    return f"gpu{device}_{field}"


def run_keys(db, run_id: str) -> list[str]:
    """The keys a run has a value for, each found by seeking a primary key (not by reading every row): a step
    column is looked for from the run's end, where it is nearly always set if it ever was."""
    keys = [column for column in STEP_COLUMNS if db.execute(
        f"SELECT 1 FROM steps WHERE run_id = ? AND {column} IS NOT NULL ORDER BY step DESC LIMIT 1",
        [run_id]).fetchone()]
    keys += [gpu_key(device, field) for device in _distinct(db, "gpu_memory", "device", run_id, -1)
             for field in GPU_FIELDS]
    return keys + _distinct(db, "metrics", "key", run_id, "")


def _distinct(db, table: str, column: str, run_id: str, below) -> list:
    """The values of the primary key's second column for a run, one seek each."""
    found, after = [], below
    while True:
        (value,) = db.execute(f"SELECT min({column}) FROM {table} WHERE run_id = ? AND {column} > ?",
                              [run_id, after]).fetchone()
        if value is None:
            return found
        found.append(after := value)


def last_values(db, run_id: str) -> dict[str, float]:
    """Each key's value at the last step that has one."""
    values = {}
    for key in run_keys(db, run_id):
        where = source(key)
        row = db.execute(f"SELECT {where.column} FROM {where.table} WHERE run_id = :run {where.where} "
                         f"AND {where.column} IS NOT NULL ORDER BY step DESC LIMIT 1",
                         {"run": run_id, **where.params}).fetchone()
        if row:
            values[key] = row[0]
    return values
