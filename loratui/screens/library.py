"""Library: the adapters in library.db (name, format, family, rank, base model, the run that made it).

Read in a worker when the screen is shown; the run detail's "open adapter" lands here with the cursor on
that run's adapter.
"""

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from loratui.messages import AdaptersLoaded
from loratui.screens.base import LoratuiScreen
from loratui.widgets.nav import MainNav

EMPTY = "No adapters in the library yet.\n\nA run adds its adapter when it finishes or is stopped."
COLUMNS = ("Name", "Format", "Family", "Rank", "Alpha", "Base model", "Size", "From run", "Id")


def size_cell(size: int | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class LibraryScreen(LoratuiScreen):
    CSS_PATH = "library.tcss"
    BINDINGS = [Binding("ctrl+r", "refresh", "Refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield MainNav(active="library")
        yield DataTable(id="adapters-table", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="adapters-empty", classes="empty-state")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.set_class(True, "-empty")
        self.watch(self.app, "selected_adapter", lambda _: self.select_adapter(), init=False)

    def on_screen_resume(self) -> None:
        self.load_adapters()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_adapters(self) -> None:
        from loratui.watch import library, list_adapters

        with library() as db:
            self.post_message(AdaptersLoaded(list_adapters(db)))

    @on(AdaptersLoaded)
    def show_adapters(self, message: AdaptersLoaded) -> None:
        self.rows = message.rows
        table = self.query_one(DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(
                row["name"], row["format"], row["family"] or "", row["rank"] or "",
                f"{row['alpha']:g}" if row["alpha"] is not None else "", row["base_model"] or "",
                size_cell(row["size"]), row["source_run"] or "", str(row["id"]), key=str(row["id"]),
            )
        self.set_class(not self.rows, "-empty")
        self.select_adapter()

    def select_adapter(self) -> None:
        wanted = self.app.selected_adapter
        table = self.query_one(DataTable)
        if wanted is not None and str(wanted) in table.rows:
            table.move_cursor(row=table.get_row_index(str(wanted)))
            table.focus()

    def action_refresh(self) -> None:
        self.load_adapters()
