"""What the Library screen reads: one page of adapters for a filter and facets (each row with its file's
status), the values each facet can take, and one adapter's detail with its run's loss curve and its images (or
its text samples, for a task whose samples are text).

A page is small (PAGE rows, one more asked to know whether more match), so a keystroke in the filter costs
one indexed query and a few hundred stats, whatever the size of the library; the screen asks for a longer
page when the cursor reaches the end.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import LoratuiError
from loratui.library import adapters, generations, store
from loratui.series import library_series, width_for

PAGE = 100  # more than a screen holds; each row costs a stat of its files
FACETS = ("family", "task", "base", "tag")
LOSS_POINTS = 400  # about what a chart in a side pane can draw
SAMPLES, GENERATIONS = 2, 4  # images shown: the newest of each
TEXTS = 6  # text samples shown (causal-lm): the newest steps' completions


@dataclass(frozen=True)
class LibraryQuery:
    """A filter (words matched as prefixes against names, tags, trigger words, notes) and facet values."""

    text: str = ""
    family: str | None = None
    task: str | None = None
    base: str | None = None
    tag: str | None = None
    limit: int = PAGE

    def facets(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in FACETS}

    def longer(self) -> "LibraryQuery":
        return replace(self, limit=self.limit + PAGE)


@dataclass(frozen=True)
class LibraryPage:
    query: LibraryQuery
    rows: list[dict]  # adapters rows (no metadata) with "status": ok, missing or changed
    more: bool  # more adapters match than the page holds
    total: int | None  # how many match, when no words are given (full-text matches are not counted)


@dataclass(frozen=True)
class AdapterView:
    """adapters.details() with the loss curve of the run that trained it and the images made with it."""

    row: dict
    loss_steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    pictures: list[tuple[str, str]] = field(default_factory=list)  # (caption, image path)
    texts: list[dict] = field(default_factory=list)  # the run's text samples (step, prompt, text), newest step first


def page(db, query: LibraryQuery) -> LibraryPage:
    words = query.text.strip()
    rows = None
    if words:
        try:
            rows = adapters.search(db, words, limit=query.limit + 1, **query.facets())
        except LoratuiError:  # only punctuation: nothing to match, so it filters nothing
            rows = None
    total = None
    if rows is None:
        rows = adapters.list_adapters(db, limit=query.limit + 1, **query.facets())
        total = adapters.count_adapters(db, **query.facets())
    for row in rows[: query.limit]:
        row["status"] = store.status(row)
    return LibraryPage(query, rows[: query.limit], len(rows) > query.limit, total)


def facet_values(db) -> dict[str, list[str]]:
    """Each facet's values, most used first for tags (at most 100 of them)."""
    values = {
        name: [r[0] for r in db.execute(
            f"SELECT DISTINCT {column} FROM adapters WHERE {column} IS NOT NULL ORDER BY 1").fetchall()]
        for name, column in (("family", "family"), ("task", "task"), ("base", "base_model"))
    }
    values["tag"] = [r[0] for r in db.execute(
        "SELECT j.value FROM adapters a, json_each(a.tags) j GROUP BY j.value ORDER BY count(*) DESC, j.value "
        "LIMIT 100").fetchall()]
    return values


def adapter_view(db, adapter_id: int) -> AdapterView:
    row = adapters.details(db, adapter_id)
    run = row["run"]
    steps, loss = loss_curve(db, run["id"]) if run else ([], [])
    pictures, texts = [], []
    if run:  # sample paths are relative to the run folder
        folder = run["dir"]
        images = [s for s in run["samples"][::-1] if s["text"] is None]
        pictures = [(f"sample, step {s['step']}", str(Path(folder) / s["path"])) for s in images[:SAMPLES]]
        texts = sorted((s for s in run["samples"] if s["text"] is not None), key=lambda s: -s["step"])[:TEXTS]
    pictures += [(f"generation #{g['id']}: {g['prompt']}", g["path"])
                 for g in generations.recent(db, limit=GENERATIONS, adapter_id=row["id"]) if g["path"]]
    return AdapterView(row, steps, loss, pictures, texts)


def loss_curve(db, run_id: str, points: int = LOSS_POINTS) -> tuple[list[int], list[float]]:
    """The run's loss, at most about `points` of it: each stretch of steps keeps its low and its high, so a
    spike still shows."""
    (last,) = db.execute("SELECT max(step) FROM steps WHERE run_id = ?", [run_id]).fetchone()
    if last is None:
        return [], []
    capacity = max(1, points // 2)
    steps, loss = library_series(db, run_id, "loss", width_for(last + 1, capacity), last, capacity).points()
    return list(steps), list(loss)
