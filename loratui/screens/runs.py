"""Runs, the home screen: every run in the library with its status, progress and latest loss, live; Enter
opens one, `n` starts a new one in the run settings (a fresh template, or a spec file).

A worker thread re-reads the library (marking dead runs crashed) once a second and posts the list only
when it changed; the table then updates the cells that differ, so the cursor stays put.
"""

import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from loratui.messages import RunsRefreshed, SpecRead
from loratui.screens.base import LoratuiScreen
from loratui.widgets.nav import MainNav
from loratui.widgets.run_summary import STATUS_MARKS

if TYPE_CHECKING:  # the new-run dialog is imported when `n` is pressed, not before the first frame
    from loratui.screens.new_run import NewRunChoice

EMPTY = (
    "No runs yet.\n\nPress n to start one from a template or a spec file, or 3 to browse models and datasets.\n"
    "A run started elsewhere (`loratui run --spec run.toml --detach`) shows up here live."
)
# The id comes early so that it stays in view at 80 columns; a run's id usually begins with its name.
COLUMNS = (("status", "Status"), ("id", "Run id"), ("progress", "Progress"), ("loss", "Loss"),
           ("started", "Started"), ("name", "Name"))
BAR_WIDTH = 10
STATUS_COLOURS = {"running": "primary", "finished": "success", "stopped": "warning", "failed": "error",
                  "crashed": "error", "queued": "secondary"}


def progress_cell(step: int, total: int | None) -> str:
    if not total:
        return f"{step}"
    filled = min(BAR_WIDTH, round(BAR_WIDTH * step / total))
    return f"{'█' * filled}{'░' * (BAR_WIDTH - filled)} {step}/{total}"


def started_cell(row: dict) -> str:
    stamp = row.get("started") or row.get("created")
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone().strftime("%m-%d %H:%M")


class RunsTable(DataTable):
    """The table's own Enter (select the row, which opens the run), shown in the footer. Not a screen binding
    with priority: that would act as Enter is read, before the arrow keys typed ahead of it move the cursor."""

    BINDINGS = [Binding("enter", "select_cursor", "Open run")]


class RunsScreen(LoratuiScreen):
    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]
    REFRESH_S = 1.0
    HIDDEN_REFRESH_S = 5.0  # behind another screen only crashes need noticing, and the detail screen looks too

    def __init__(self) -> None:
        super().__init__(classes="-empty")  # set before mounting: on mount it would restyle the whole screen
        self.rows: dict[str, dict] = {}
        self.latest: list[dict] | None = None
        self._wake = threading.Event()  # ends the watcher's wait early: shown again, or closing

    def compose(self) -> ComposeResult:
        yield MainNav(active="runs")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="runs-empty", classes="empty-state")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.app.theme_changed_signal.subscribe(self, lambda _: self.redraw_all())
        self.call_after_refresh(self.watch_runs)  # its first read of the library waits for the first frame

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def watch_runs(self) -> None:
        from loratui.watch import library, list_runs

        worker = get_current_worker()
        with library() as db:
            last = None
            while not worker.is_cancelled:
                rows = list_runs(db)
                if rows != last:
                    self.post_message(RunsRefreshed(rows))
                    last = rows
                self._wake.wait(self.REFRESH_S if self.is_current else self.HIDDEN_REFRESH_S)
                self._wake.clear()

    @work(thread=True, group="new-run", exit_on_error=False)
    def read_new_spec(self, choice: "NewRunChoice") -> None:
        from engine.spec import read_spec_file
        from engine.spec_template import template_values
        from loratui.screens.spec_editor import default_save_path

        if choice.path:
            path = Path(choice.path).expanduser().absolute()
            self.post_message(SpecRead(read_spec_file(path), str(path), path))
            return
        values = template_values(task=choice.task)
        self.post_message(SpecRead(values, f"a new {choice.task} run", default_save_path(values)))

    @on(RunsRefreshed)
    def remember_runs(self, message: RunsRefreshed) -> None:
        self.latest = message.rows
        if self.is_current:
            self.show_runs()

    def on_screen_resume(self) -> None:
        self.show_runs()
        self._wake.set()

    def on_unmount(self) -> None:
        self._wake.set()

    def show_runs(self) -> None:
        """Update the table from the latest rows; skipped while the screen is hidden."""
        if self.latest is None:
            return
        table = self.query_one(DataTable)
        fresh = {row["id"]: row for row in self.latest}
        if list(fresh) != list(self.rows):
            self.rows = fresh
            self.redraw_all()
            return
        for run_id, row in fresh.items():
            if row != self.rows[run_id]:
                for key, value in zip((key for key, _ in COLUMNS), self.cells(row), strict=True):
                    table.update_cell(run_id, key, value)
        self.rows = fresh

    def redraw_all(self) -> None:
        table = self.query_one(DataTable)
        keep = self.selected_run()
        table.clear()
        for run_id, row in self.rows.items():
            table.add_row(*self.cells(row), key=run_id)
        if keep in self.rows:
            table.move_cursor(row=table.get_row_index(keep))
        self.set_class(not self.rows, "-empty")

    def cells(self, row: dict) -> tuple:
        status = row["status"]
        colour = self.app.theme_variables.get(STATUS_COLOURS.get(status, "foreground"))
        loss = row.get("last_loss")
        return (
            Text(f"{STATUS_MARKS.get(status, '?')} {status}", style=colour or ""),
            row["id"],
            progress_cell(int(row.get("step") or 0), row.get("total_steps")),
            f"{loss:.4g}" if loss is not None else "–",
            started_cell(row),
            row["name"],
        )

    def selected_run(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    @on(DataTable.RowSelected)
    def open_clicked(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(event.row_key.value)

    @on(SpecRead)
    def edit_new_spec(self, message: SpecRead) -> None:
        from loratui.screens.spec_editor import SpecEditorScreen

        self.app.push_screen(SpecEditorScreen(message.values, origin=message.origin, save_path=message.save_path))

    def action_new_run(self) -> None:
        from loratui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen(), self.new_run_chosen)

    def new_run_chosen(self, choice: "NewRunChoice | None") -> None:
        if choice is not None:
            self.read_new_spec(choice)

    def action_refresh(self) -> None:
        self._wake.set()
