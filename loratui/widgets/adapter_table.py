"""The Library's table of adapters: a mark column and the id first (so both stay visible at 80 columns), then
narrow, truncated cells. It is filled one page at a time (views.PAGE rows), never with the whole library."""

from textual.binding import Binding
from textual.widgets import DataTable

# (key, title, width): widths keep the id, name and status on an 80-column screen.
COLUMNS = (("mark", " ", 1), ("id", "Id", 5), ("name", "Name", 24), ("status", "Status", 7), ("task", "Task", 14),
           ("family", "Family", 6), ("weight", "Weight", 6), ("tags", "Tags", 16), ("trigger", "Trigger words", 16),
           ("base", "Base model", 18), ("rank", "Rank", 4), ("size", "Size", 7))
MARK = "●"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def size_cell(size: int | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def cells(row: dict, marked: bool) -> tuple[str, ...]:
    """One table row's cells, clipped to their columns."""
    values = (MARK if marked else "", str(row["id"]), row["name"], row.get("status", ""), row.get("task") or "",
              row["family"] or "", f"{row['preferred_weight']:g}", ",".join(row["tags"]),
              ",".join(row["trigger_words"]), row["base_model"] or "", str(row["rank"] or ""), size_cell(row["size"]))
    return tuple(clip(value, width) for value, (_, _, width) in zip(values, COLUMNS, strict=True))


class AdapterTable(DataTable):
    BINDINGS = [Binding("enter", "select_cursor", "Detail")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_by_key: dict[str, dict] = {}

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.add_column(title, key=key, width=width)

    def show(self, rows: list[dict], marked: set[int]) -> None:
        """Replace the rows, keeping the cursor on the same adapter where it is still listed."""
        current = self.current_id()
        self.clear()
        self.rows_by_key = {}
        self.append(rows, marked)
        if current is not None and str(current) in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(str(current)))

    def append(self, rows: list[dict], marked: set[int]) -> None:
        """Add rows not listed yet (a longer page repeats the shorter one's rows)."""
        new = [row for row in rows if str(row["id"]) not in self.rows_by_key]
        for row in new:
            self.rows_by_key[str(row["id"])] = row
            self.add_row(*cells(row, row["id"] in marked), key=str(row["id"]))

    def current_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return int(key)

    def current_row(self) -> dict | None:
        current = self.current_id()
        return None if current is None else self.rows_by_key[str(current)]

    def show_mark(self, adapter_id: int, marked: bool) -> None:
        self.update_cell(str(adapter_id), "mark", MARK if marked else "")
