"""Library: the adapters in library.db as a workbench. A filter box (`/`, full-text over names, tags, trigger
words and notes) and facets narrow the table; Enter opens the detail pane (facts, header summary, lineage
tree, the run's loss curve, samples and generations), which follows the cursor; edit, rename, remove, export
and import in dialogs; space marks adapters for the mixer.

Every read and change runs in a worker thread. The table holds a page of rows (views.PAGE), fetched again
per keystroke, and a longer page when the cursor reaches its end. The run detail's "open adapter" lands
here with the cursor on that run's adapter.
"""

import threading
from contextlib import contextmanager
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Select, Static, Tree

from engine.errors import LoratuiError
from loratui.library.views import LibraryQuery
from loratui.messages import AdapterDetailLoaded, AdaptersLoaded, FacetsLoaded, LibraryChanged
from loratui.screens.adapter_dialogs import (
    EditDialog,
    ExportDialog,
    ImportDialog,
    RemoveDialog,
    RenameDialog,
)
from loratui.screens.base import LoratuiScreen
from loratui.screens.binding_commands import ScreenKeys
from loratui.widgets.adapter_detail import AdapterDetail
from loratui.widgets.adapter_table import AdapterTable
from loratui.widgets.fitting_footer import FittingFooter
from loratui.widgets.library_facets import LibraryFacets
from loratui.widgets.nav import MainNav
from loratui.words import count

EMPTY = "No adapters in the library yet.\n\nA run adds its adapter when it finishes or is stopped; i imports one."
NO_MATCH = "No adapter matches the filter and facets."
NARROW = 120  # below this width the detail pane takes the table's place
ROW_ACTIONS = ("detail", "mark", "mixer", "edit", "rename", "export", "remove")


class LibraryScreen(LoratuiScreen):
    CSS_PATH = "library.tcss"
    COMMANDS = {ScreenKeys}
    PALETTE_TITLE = "Library"
    BINDINGS = [
        # A priority binding acts as the key is read, so the keys typed after it reach the filter box.
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
        Binding("space", "mark", "Mark"),
        Binding("g", "mixer('generate')", "Generate"),
        Binding("c", "mixer('combine')", "Combine"),
        Binding("m", "mixer('merge')", "Merge"),
        # The footer shows what fits, in this order: the most used first.
        Binding("e", "edit", "Edit"),
        Binding("i", "import_adapter", "Import"),
        Binding("delete", "remove", "Remove"),
        Binding("n", "rename", "Rename"),
        Binding("x", "export", "Export"),
        Binding("r", "open_run", "Run"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.wanted = LibraryQuery()
        self.shown: LibraryQuery | None = None
        self.more = False
        self.marked: dict[int, dict] = {}
        """The marked adapters (library rows by id), kept across filters: what the mixer opens with."""
        self.pending_select: int | None = None
        self._reader = None
        self._reader_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        yield MainNav(active="library")
        yield LibraryFacets(id="facets")
        with Horizontal(id="library-body"):
            yield AdapterTable(id="adapters-table")
            yield Static(EMPTY, id="adapters-empty", classes="empty-state")
            yield AdapterDetail(id="detail")
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.set_class(True, "-empty")
        self.query_one(AdapterTable).focus()  # keys act on the table; `/` goes to the filter
        self.watch(self.app, "selected_adapter", self.select_adapter)

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    def reload(self) -> None:
        self.load_facets()
        self.load_page(self.wanted)

    @contextmanager
    def reading(self):
        """The screen's own connection for reads, one worker at a time: a keystroke in the filter must not
        pay for opening library.db."""
        from loratui.watch import open_library

        with self._reader_lock:
            if self._reader is None:
                self._reader = open_library()
            yield self._reader

    def on_unmount(self) -> None:
        if self._reader is not None:
            self._reader.close()

    @work(thread=True, exclusive=True, group="page", exit_on_error=False)
    def load_page(self, query: LibraryQuery) -> None:
        from loratui.library.views import page

        with self.reading() as db:
            self.post_message(AdaptersLoaded(page(db, query)))

    @work(thread=True, exclusive=True, group="facets", exit_on_error=False)
    def load_facets(self) -> None:
        from loratui.library.views import facet_values

        with self.reading() as db:
            self.post_message(FacetsLoaded(facet_values(db)))

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load_detail(self, adapter_id: int) -> None:
        from loratui.library.views import adapter_view
        from loratui.watch import load_image
        from loratui.widgets.graphics import image_widget

        with self.reading() as db:
            view = adapter_view(db, adapter_id)
        images = [(caption, load_image(path)) for caption, path in view.pictures]
        if any(image is not None for _, image in images):
            image_widget()  # its slow first import happens here, not on the UI thread
        self.post_message(AdapterDetailLoaded(view, images))

    @on(AdaptersLoaded)
    def show_page(self, message: AdaptersLoaded) -> None:
        page = message.page
        if page.query != self.wanted:
            return  # a later keystroke asked for another page
        table = self.query_one(AdapterTable)
        for row in page.rows:
            if row["id"] in self.marked:
                self.marked[row["id"]] = row
        marks = set(self.marked)
        if self.shown is not None and page.query.limit > self.shown.limit and page.query.facets() == \
                self.shown.facets() and page.query.text == self.shown.text:
            table.append(page.rows, marks)
        else:
            table.show(page.rows, marks)
        self.shown, self.more = page.query, page.more
        empty = self.query_one("#adapters-empty", Static)
        empty.update(NO_MATCH if page.query.facets() != LibraryQuery().facets() or page.query.text else EMPTY)
        self.set_class(not page.rows, "-empty")
        listed = f"{len(page.rows)} of {count(page.total, 'adapter')}" if page.total is not None else count(
            len(page.rows), "adapter")
        more = ", more below" if page.more else ""
        self.query_one(MainNav).note(f"{listed}{more}" + (f" · {len(marks)} marked" if marks else ""))
        self.select_adapter(self.pending_select)
        self.refresh_bindings()

    @on(FacetsLoaded)
    def show_facets(self, message: FacetsLoaded) -> None:
        self.query_one(LibraryFacets).set_values(message.values)

    @on(Input.Changed, "#filter")
    @on(Select.Changed)
    def filter_changed(self) -> None:
        self.wanted = self.query_one(LibraryFacets).library_query()
        self.load_page(self.wanted)

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(AdapterTable).focus()

    @on(DataTable.RowHighlighted)
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(AdapterTable)
        if self.more and event.cursor_row == table.row_count - 1 and self.shown == self.wanted:
            self.wanted = self.wanted.longer()
            self.load_page(self.wanted)
        if self.has_class("-detail") and event.row_key.value is not None:
            self.load_detail(int(event.row_key.value))
        self.refresh_bindings()

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.set_class(True, "-detail")
        self.load_detail(int(event.row_key.value))

    @on(AdapterDetailLoaded)
    def show_detail(self, message: AdapterDetailLoaded) -> None:
        if self.has_class("-detail"):
            self.query_one(AdapterDetail).show(message.view, message.images)
            self.refresh_bindings()

    @on(Tree.NodeSelected)
    def lineage_selected(self, event: Tree.NodeSelected) -> None:
        """A parent or child in the lineage tree: put the cursor on it, if it is listed."""
        self.select_adapter(event.node.data)

    @on(LibraryChanged)
    def changed(self, message: LibraryChanged) -> None:
        change = message.change
        self.notify(change.note, markup=False)
        self.marked.pop(change.removed, None)
        if change.adapter_id is not None:
            self.pending_select = change.adapter_id
        self.reload()
        if self.has_class("-detail") and self.current_row():
            self.load_detail(self.current_row()["id"])

    def select_adapter(self, adapter_id: int | None) -> None:
        """Put the cursor on an adapter when it is listed; remember it until it is."""
        self.pending_select = adapter_id
        table = self.query_one(AdapterTable)
        if adapter_id is not None and str(adapter_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(adapter_id)))
            table.focus()
            self.pending_select = None

    def current_row(self) -> dict | None:
        return self.query_one(AdapterTable).current_row()

    def chosen_rows(self) -> list[dict]:
        """The marked adapters, or the one under the cursor when none is marked."""
        if self.marked:
            return list(self.marked.values())
        row = self.current_row()
        return [row] if row else []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ROW_ACTIONS:  # hidden without a row, so an empty library's footer shows Import
            return self.current_row() is not None
        if action == "filter":
            return not isinstance(self.focused, Input)  # a `/` typed in a field is the field's
        if action == "open_run":
            row = self.current_row()
            return (row is not None and row["source_run"] is not None) or None
        return True

    def action_filter(self) -> None:
        # Focused now, not after the keys already read (Widget.focus waits): `/ink` typed fast lands in the box.
        self.set_focus(self.query_one("#filter", Input))

    def action_back(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            self.query_one(AdapterTable).focus()
        elif self.has_class("-detail"):
            self.set_class(False, "-detail")
            self.query_one(AdapterTable).focus()

    def action_refresh(self) -> None:
        self.reload()

    def action_mark(self) -> None:
        row = self.current_row()
        marked = row["id"] not in self.marked
        if marked:
            self.marked[row["id"]] = row
        else:
            del self.marked[row["id"]]
        table = self.query_one(AdapterTable)
        table.show_mark(row["id"], marked)
        table.action_cursor_down()

    def action_mixer(self, action: str) -> None:
        """The mixer with the marked adapters (or the cursor's); the table reloads when it closes (a combine
        adds an entry), as on every return to this screen."""
        from loratui.screens.mixer import MixerScreen

        try:
            screen = MixerScreen(self.chosen_rows(), action)
        except LoratuiError as error:  # adapters of different models
            self.app.report_error(error)
            return
        self.app.push_screen(screen)

    def action_open_run(self) -> None:
        self.app.open_run(self.current_row()["source_run"])

    def action_edit(self) -> None:
        self.ask(EditDialog(self.current_row()))

    def action_rename(self) -> None:
        self.ask(RenameDialog(self.current_row()))

    def action_remove(self) -> None:
        self.ask(RemoveDialog(self.current_row()))

    def action_export(self) -> None:
        self.ask(ExportDialog(self.current_row(), f"{Path.cwd()}/"))

    def action_import_adapter(self) -> None:
        self.ask(ImportDialog("Import an adapter"))

    def ask(self, dialog) -> None:
        """Show a dialog; it applies what it asks for itself, and closes with what that did."""
        self.app.push_screen(dialog, lambda change: change is not None and self.post_message(LibraryChanged(change)))
