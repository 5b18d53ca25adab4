"""The Library's table of adapters, laid out for the width it has: the mark, id, name, status and base model
always, then the other columns in order of use, each only where it fits whole (so every header reads in
full and nothing scrolls sideways; the detail pane shows the rest). Each column is as wide as its longest
value, up to a limit; a name too long for its column keeps its end (`shape…7-124846-2`), which is where
two runs of one spec differ. It is filled one page at a time (views.PAGE rows), never with the whole library.
"""

from dataclasses import dataclass

from textual.binding import Binding
from textual.widgets import DataTable

from loratui.words import human_bytes

MARK = "●"
ELLIPSIS = "…"
PADDING = 2  # DataTable's cell padding, one column each side
NAME_FLOOR = 12  # the narrowest a name gets, when the always-shown columns barely fit
NAME_WANTED = 40  # a name gets this much (or its length) before optional columns get any


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    most: int = 1000  # the widest it grows
    keep_end: bool = False  # a long value keeps its end (names, ids), else its start
    always: bool = False


COLUMNS = (
    Column("mark", " ", 1, always=True), Column("id", "Id", always=True),
    Column("name", "Name", keep_end=True, always=True), Column("status", "Status", always=True),
    Column("base", "Base model", 32, keep_end=True, always=True), Column("task", "Task", 22),
    Column("family", "Family", 8), Column("rank", "Rank"), Column("weight", "Weight"), Column("size", "Size"),
    Column("tags", "Tags", 24), Column("trigger", "Trigger words", 24),
)


def clip(text: str, width: int, keep_end: bool = False) -> str:
    if len(text) <= width:
        return text
    if not keep_end:
        return text[: width - 1] + ELLIPSIS
    head = (width - 1) // 3  # a little of the start says what it is, the end tells it from its siblings
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head):]


def values(row: dict, marked: bool) -> dict[str, str]:
    """One adapter's cells, whole."""
    return {"mark": MARK if marked else "", "id": str(row["id"]), "name": row["name"],
            "status": row.get("status", ""), "base": row["base_model"] or "", "task": row.get("task") or "",
            "family": row["family"] or "", "rank": str(row["rank"] or ""), "weight": f"{row['preferred_weight']:g}",
            "size": "" if row["size"] is None else human_bytes(row["size"]), "tags": ",".join(row["tags"]),
            "trigger": ",".join(row["trigger_words"])}


def layout(rows: list[dict[str, str]], available: int) -> tuple[tuple[Column, int], ...]:
    """The columns shown in `available` cells and their widths."""
    natural = {c.key: min(c.most, max([len(c.title), *(len(r[c.key]) for r in rows)])) for c in COLUMNS}
    name = natural["name"]
    widths = {c.key: natural[c.key] for c in COLUMNS if c.always}
    widths["name"] = min(name, NAME_WANTED)

    def free() -> int:
        return available - sum(w + PADDING for w in widths.values())

    widths["name"] = max(min(name, NAME_FLOOR), widths["name"] + min(0, free()))
    for column in COLUMNS:
        if column.key not in widths and natural[column.key] + PADDING <= free():
            widths[column.key] = natural[column.key]
    widths["name"] += max(0, min(free(), name - widths["name"]))
    return tuple((c, widths[c.key]) for c in COLUMNS if c.key in widths)


class AdapterTable(DataTable):
    BINDINGS = [Binding("enter", "select_cursor", "Detail"),
                Binding("home", "first_row", "First row", show=False),
                Binding("end", "last_row", "Last row", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_by_key: dict[str, dict] = {}
        self.marks: set[int] = set()
        self.columns_shown: tuple[tuple[Column, int], ...] = ()

    def show(self, rows: list[dict], marked: set[int]) -> None:
        """Replace the rows, keeping the cursor on the same adapter where it is still listed."""
        current = self.current_id()
        self.rows_by_key = {str(row["id"]): row for row in rows}
        self.marks = set(marked)
        self._fill(current)

    def append(self, rows: list[dict], marked: set[int]) -> None:
        """Add rows not listed yet (a longer page repeats the shorter one's rows)."""
        new = [row for row in rows if str(row["id"]) not in self.rows_by_key]
        self.rows_by_key.update((str(row["id"]), row) for row in new)
        self.marks = set(marked)
        if self._layout() != self.columns_shown:  # a longer value among them: lay out again
            self._fill(self.current_id())
            return
        for row in new:
            self.add_row(*self._cells(row), key=str(row["id"]))

    def on_resize(self) -> None:
        if self._layout() != self.columns_shown:
            self._fill(self.current_id())

    def _layout(self) -> tuple[tuple[Column, int], ...]:
        available = self.size.width - self.styles.scrollbar_size_vertical
        return layout([values(row, False) for row in self.rows_by_key.values()], available)

    def _cells(self, row: dict) -> list[str]:
        whole = values(row, row["id"] in self.marks)
        return [clip(whole[column.key], width, column.keep_end) for column, width in self.columns_shown]

    def _fill(self, keep: int | None) -> None:
        self.columns_shown = self._layout()
        self.clear(columns=True)
        for column, width in self.columns_shown:
            self.add_column(column.title, key=column.key, width=width)
        for key, row in self.rows_by_key.items():
            self.add_row(*self._cells(row), key=key)
        if keep is not None and str(keep) in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(str(keep)))

    def current_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return int(key)

    def current_row(self) -> dict | None:
        current = self.current_id()
        return None if current is None else self.rows_by_key[str(current)]

    def show_mark(self, adapter_id: int, marked: bool) -> None:
        (self.marks.add if marked else self.marks.discard)(adapter_id)
        self.update_cell(str(adapter_id), "mark", MARK if marked else "")

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=self.row_count - 1)
