"""Browse: models and datasets from the built-ins, the HF cache, local folders and the Hub, side by side.

Local sources are listed at once; typing a query and pressing Enter searches the Hub (or adds a typed path).
Enter on a row picks it as the run's model or dataset; ctrl+n opens the run settings for the pair.
All reading happens in worker threads; handlers only update widgets.

The list has the focus first, so 1-4 switch screens at once. The search box takes every key typed in it,
digits and `/` too (Hub ids and paths have them: stable-diffusion-v1-5, org/model, ~/data/run2); `/` or ctrl+f
enters it, and Esc or Enter (which searches) leaves it for the list, where 1-4 switch screens again and the
next `/` starts a new search. Each tab keeps its own query.
"""

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Select, Static, Tab, Tabs

from engine.errors import LoratuiError
from loratui.browse import columns
from loratui.browse.entries import Entry, ModelDetail, human_count
from loratui.browse.hub import LIBRARIES, SORTS, TASKS, looks_like_repo_id
from loratui.browse.local import looks_like_path
from loratui.screens.base import LoratuiScreen
from loratui.screens.browse_messages import EntriesLoaded, EntryDescribed, EntryFailed, NetworkChecked
from loratui.widgets.browse_detail import DetailPanel
from loratui.widgets.nav import MainNav

KINDS = ("model", "dataset")
COLUMNS = (("source", "Source"), ("name", "Name"), ("task", "Task"), ("downloads", "↓"), ("likes", "♥"))


class BrowseScreen(LoratuiScreen):
    CSS_PATH = "browse.tcss"
    BINDINGS = [
        Binding("ctrl+t", "toggle_kind", "Models/Datasets"),
        Binding("ctrl+n", "edit", "New run"),
        # A priority binding acts as the key is read, so the keys typed after it reach the search box.
        Binding("slash,ctrl+f", "focus_search", "Search", key_display="/", priority=True),
        Binding("escape", "leave_field", "Leave field"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.kind = "model"
        self.local: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        self.hub: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        # Each tab keeps its own search: the query its list is filtered by, and what its box held when left.
        self.queries: dict[str, str] = {kind: "" for kind in KINDS}
        self.drafts: dict[str, str] = {kind: "" for kind in KINDS}
        self.searching: dict[str, bool] = {kind: False for kind in KINDS}  # a Hub search on its way
        self.unreachable = False
        self.shown: dict[str, Entry] = {}
        self.model: tuple[Entry, ModelDetail] | None = None
        self.data: tuple[Entry, object] | None = None
        self.mapping: dict[str, str] = {}  # the chosen dataset's columns by spec field
        self.described: object | None = None  # the detail on show
        self.pending: Entry | None = None  # picked with Enter before its details had arrived

    def compose(self) -> ComposeResult:
        yield MainNav(active="browse")
        yield Static("", id="browse-banner", markup=False)
        with Horizontal(id="browse-bar"):
            yield Tabs(Tab("Models", id="model"), Tab("Datasets", id="dataset"), id="browse-kind")
            yield Input(placeholder="search the Hub, or type a local path; Enter", id="browse-search")
        with Horizontal(id="browse-filters"):
            yield Select([(n, n) for n in LIBRARIES], prompt="any library", id="browse-library", compact=True)
            yield Select([(t, t) for t in TASKS], prompt="any task", id="browse-task", compact=True)
            yield Select([(s, s) for s in SORTS], value="downloads", allow_blank=False, id="browse-sort", compact=True)
        with Horizontal(id="browse-body"):
            yield DataTable(id="browse-list", cursor_type="row", zebra_stripes=True)
            yield DetailPanel(id="browse-detail")
        yield Static("", id="browse-chosen", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#browse-list", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.query_one("#browse-banner", Static).display = False
        self.show_chosen()
        table.focus()
        self.check_network()
        for kind in KINDS:
            self.load_local(kind)

    @work(thread=True, group="network", exit_on_error=False)
    def check_network(self) -> None:
        from loratui.browse.network import probe

        self.post_message(NetworkChecked(probe()))

    @work(thread=True, group="local", exit_on_error=False)
    def load_local(self, kind: str, add: str = "") -> None:
        from pathlib import Path

        from loratui.browse import local
        from loratui.watch import open_library

        db = open_library()
        try:
            if add:
                entry = local.classify(Path(add))
                if entry is None:
                    raise LoratuiError(f"'{add}' is not a model folder or a dataset loratui can read",
                                       hint="a folder with model_index.json or config.json, an imagefolder, "
                                            "or a csv, json/jsonl, parquet or text file")
                local.remember_path(db, Path(add))
                kind, add = entry.kind, entry.ref
            paths = local.remembered_paths(db)
        finally:
            db.close()
        entries = local.builtin_entries(kind) + local.cache_entries(kind)
        entries += local.local_entries(kind, paths, scan=[Path.cwd()])
        self.post_message(EntriesLoaded(kind, "local", entries, show=add))

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def search(self, kind: str, query: str, library, task, sort: str) -> None:
        from loratui.browse import hub
        from loratui.browse.network import HubUnavailable, probe

        if self.unreachable:
            # A dead link can leave a Hub call waiting forever (huggingface_hub sets no timeout): ask
            # the probe, which gives up after a few seconds, before trying again.
            banner = probe()
            if banner:
                self.post_message(NetworkChecked(banner))
                self.post_message(EntriesLoaded(kind, "hub", []))
                return
        try:
            if kind == "model":
                found = hub.search_models(query, library=library, task=task, sort=sort)
            else:
                found = hub.search_datasets(query, task=task, sort=sort)
        except HubUnavailable as exc:
            self.post_message(NetworkChecked(exc.message))
            found = []
        else:
            self.post_message(NetworkChecked(""))
            if looks_like_repo_id(query) and query not in {e.ref for e in found}:
                # Private repos are not listed: a typed id can still be opened (and asks for a token).
                found.append(Entry(kind, "hub", query, query, "typed id"))
        self.post_message(EntriesLoaded(kind, "hub", found))

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def describe(self, entry: Entry, config: str | None = None) -> None:
        """A dataset is read (and a built-in built) by the app's quick worker process: datasets' streaming
        imports torch. A detail the cursor has left behind is never asked for."""
        from loratui.browse import hub, models
        from loratui.library.requests import DatasetRequest
        from loratui.widgets.graphics import image_widget

        try:
            if entry.kind == "model":
                self.post_message(EntryDescribed(entry, models.describe(entry)))
                return
            card = hub.dataset_card(entry.ref) if entry.source == "hub" else None
            answer = self.app.ask_quick(DatasetRequest(entry.ref, config))
            if answer is not None:
                if answer.detail.image_columns:
                    image_widget()  # its slow first import happens here, not on the UI thread
                self.post_message(EntryDescribed(entry, answer.detail, card))
        except LoratuiError as exc:
            self.post_message(EntryFailed(entry, exc))

    @on(NetworkChecked)
    def show_banner(self, message: NetworkChecked) -> None:
        self.unreachable = bool(message.banner)
        banner = self.query_one("#browse-banner", Static)
        banner.update(message.banner)
        banner.display = bool(message.banner)

    @on(EntriesLoaded)
    def entries_loaded(self, message: EntriesLoaded) -> None:
        (self.local if message.origin == "local" else self.hub)[message.kind] = message.entries
        if message.origin == "hub":
            self.searching[message.kind] = False
        if message.show:
            self.query_one("#browse-kind", Tabs).active = message.kind
            self.switch_kind(message.kind)
        if message.kind == self.kind:
            self.redraw()
        if message.show:
            table = self.query_one("#browse-list", DataTable)
            keys = list(self.shown)
            if f"local|{message.show}" in keys:
                table.move_cursor(row=keys.index(f"local|{message.show}"))
                table.focus()

    @on(EntryDescribed)
    def entry_described(self, message: EntryDescribed) -> None:
        panel = self.query_one(DetailPanel)
        if message.entry != panel.entry:
            return  # the cursor moved on while it was read
        self.described = message.detail
        if message.entry.kind == "model":
            panel.show_model(message.entry, message.detail)
        else:
            panel.show_dataset(message.entry, message.detail, message.card)
        if self.pending == message.entry:
            self.choose(message.entry, message.detail)

    @on(EntryFailed)
    def entry_failed(self, message: EntryFailed) -> None:
        if message.entry != self.query_one(DetailPanel).entry:
            return
        error = message.error
        self.query_one(DetailPanel).show_error(message.entry, error.message + (f"\nhint: {error.hint}" if error.hint else ""))
        self.app.report_error(error)

    @on(DetailPanel.RolesChanged)
    def roles_changed(self, message: DetailPanel.RolesChanged) -> None:
        if self.data is not None and self.query_one(DetailPanel).entry == self.data[0]:
            self.mapping = message.mapping
            self.show_chosen()

    @on(DetailPanel.ConfigChosen)
    def config_chosen(self, message: DetailPanel.ConfigChosen) -> None:
        entry = self.query_one(DetailPanel).entry
        if entry is not None:
            self.describe(entry, message.config)

    @on(Input.Submitted, "#browse-search")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if looks_like_path(text):
            self.queries[self.kind] = ""
            self.load_local(self.kind, add=text)
            return
        self.queries[self.kind] = text
        self.redraw()
        self.run_search()
        # Back on the list, as in less or vim: arrows walk the results, and the next `/` starts a new search
        # (in the box it would be typed: Hub ids and paths hold a `/`).
        self.query_one("#browse-list", DataTable).focus()

    @on(Select.Changed, "#browse-filters Select")
    def filters_changed(self) -> None:
        if self.hub[self.kind]:
            self.run_search()

    @on(Tabs.TabActivated, "#browse-kind")
    def kind_changed(self, event: Tabs.TabActivated) -> None:
        self.switch_kind(event.tab.id or "model")
        self.redraw()

    def switch_kind(self, kind: str) -> None:
        """Show the tab's own search in the box: a query typed for models never filters datasets."""
        if kind == self.kind:
            return
        search = self.query_one("#browse-search", Input)
        self.drafts[self.kind] = search.value
        self.kind = kind
        search.value = self.drafts[kind]
        self.query_one("#browse-library", Select).display = kind == "model"

    @on(DataTable.RowHighlighted, "#browse-list")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        entry = self.shown.get(event.row_key.value)
        if entry is not None:
            self.described = None
            self.query_one(DetailPanel).loading(entry)
            self.describe(entry)

    @on(DataTable.RowSelected, "#browse-list")
    def selected(self, event: DataTable.RowSelected) -> None:
        entry = self.shown.get(event.row_key.value)
        if entry is None:
            return
        detail = self.described
        if self.query_one(DetailPanel).entry != entry or detail is None or detail.ref != entry.ref:
            self.pending = entry  # chosen as soon as its details arrive
            return
        self.choose(entry, detail)

    def choose(self, entry: Entry, detail) -> None:
        self.pending = None
        if entry.kind == "dataset":
            self.data = (entry, detail)
            self.mapping = self.query_one(DetailPanel).mapping()
        elif not detail.trainability.trainable:
            self.notify(f"loratui cannot train {entry.ref}: {detail.trainability.reason}", severity="warning")
            return
        else:
            self.model = (entry, detail)
            self.query_one(DetailPanel).show_task(detail.trainability.task)
            if self.data is not None:  # its columns were mapped for the task before
                self.mapping = columns.guess(detail.trainability.task, self.data[1].features or {})
        self.show_chosen()

    def run_search(self) -> None:
        self.searching[self.kind] = True
        self.search(self.kind, self.queries[self.kind], self._filter("#browse-library"), self._filter("#browse-task"),
                    self.query_one("#browse-sort", Select).value)

    def _filter(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return value if isinstance(value, str) and (selector != "#browse-library" or self.kind == "model") else None

    def redraw(self) -> None:
        table = self.query_one("#browse-list", DataTable)
        query = self.queries[self.kind]
        needle = query.lower()
        local = [e for e in self.local[self.kind] if needle in e.ref.lower() or needle in e.summary.lower()]
        entries = local + [e for e in self.hub[self.kind] if e.ref not in {x.ref for x in local}]
        keep = table.cursor_row
        table.clear()
        self.shown = {f"{e.source}|{e.ref}": e for e in entries}
        for key, entry in self.shown.items():
            cells = (entry.source, entry.title, entry.task or "", human_count(entry.downloads), human_count(entry.likes))
            table.add_row(*(Text(cell) for cell in cells), key=key)
        if entries:  # the row highlighted (add_row posts it for the first) has its detail shown
            table.move_cursor(row=min(max(keep, 0), len(entries) - 1))
            return
        self.described = None
        if self.searching[self.kind]:
            self.query_one(DetailPanel).show_nothing(f"searching the Hub for '{query}'…")
        else:
            self.query_one(DetailPanel).show_nothing(f"no matches for '{query}'" if query else "nothing to list")

    def show_chosen(self) -> None:
        model = self.model[0].ref if self.model else "none (Enter on a model)"
        data = self.data[0].ref if self.data else "none (Enter on a dataset)"
        roles = ", ".join(f"{k.removesuffix('_column')} ← {v}" for k, v in self.mapping.items()) if self.data else ""
        text = f"model: {model}   dataset: {data}" + (f"   [{roles}]" if roles else "")
        self.query_one("#browse-chosen", Static).update(text)

    def action_toggle_kind(self) -> None:
        tabs = self.query_one("#browse-kind", Tabs)
        tabs.active = "dataset" if self.kind == "model" else "model"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return isinstance(self.focused, Input)  # offered (and shown) only while typing in a field
        if action == "focus_search":
            return not isinstance(self.focused, Input)  # a `/` typed in a field is the field's (org/model)
        return True

    def action_focus_search(self) -> None:
        # Focused now, not after the keys already read (Widget.focus waits): `/sd` typed fast lands in the box.
        self.set_focus(self.query_one("#browse-search", Input))

    def action_leave_field(self) -> None:
        self.query_one("#browse-list", DataTable).focus()

    def action_edit(self) -> None:
        if self.model is None:
            self.notify("pick a model first: Enter on a row in Models", severity="warning")
            return
        from loratui.screens.spec_editor import SpecEditorScreen

        entry, detail = self.model
        data_entry, dataset = self.data or (None, None)
        self.app.push_screen(SpecEditorScreen.for_choice(entry, detail, data_entry, dataset, self.mapping))
