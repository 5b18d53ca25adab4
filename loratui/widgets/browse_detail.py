"""Browse's right-hand panel: a model's facts and trainability, or a dataset's info, first rows (images drawn
in the terminal) and the mapping of its columns to the roles of the chosen model's task (text-to-image until
a model is chosen), checked as it changes."""

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Label, Select, Static

from engine.tasks import DEFAULT_TASK
from loratui.browse import columns
from loratui.browse.entries import DatasetDetail, Entry, ModelDetail, human_count, human_size
from loratui.widgets.graphics import image_widget

CELL_CHARS = 40
FILES_LISTED = 30


class DetailPanel(VerticalScroll):
    class RolesChanged(Message):
        """The column mapping changed; `errors` are its problems (empty when it is usable)."""

        def __init__(self, mapping: dict[str, str], errors: list[str]) -> None:
            super().__init__()
            self.mapping = mapping
            self.errors = errors

    class ConfigChosen(Message):
        def __init__(self, config: str) -> None:
            super().__init__()
            self.config = config

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.dataset: DatasetDetail | None = None
        self.entry: Entry | None = None
        self.model_task = DEFAULT_TASK  # the chosen model's: its spec's [data] says the column roles

    def compose(self) -> ComposeResult:
        yield Static("Pick a model or dataset on the left to see its details.", id="detail-text")
        yield Select([], prompt="config", id="detail-config", compact=True)
        with Grid(id="detail-roles"):
            yield from role_widgets(self.model_task)
        yield Static("", id="detail-checks", markup=False)
        yield DataTable(id="detail-preview", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.set_class(True, "-model")

    def loading(self, entry: Entry) -> None:
        self._show_text(entry, f"{entry.title}\n\nreading…")

    def show_error(self, entry: Entry, text: str) -> None:
        self._show_text(entry, f"{entry.title}\n\n{text}")

    def show_nothing(self, text: str) -> None:
        """No row to describe (a search that matched nothing): nothing of the entry shown before stays."""
        self._show_text(None, text)

    def _show_text(self, entry: Entry | None, text: str) -> None:
        self.entry, self.dataset = entry, None
        self.set_class(True, "-model")
        self.query_one("#detail-text", Static).update(Text(text))

    def show_model(self, entry: Entry, detail: ModelDetail) -> None:
        self.entry, self.dataset = entry, None
        self.set_class(True, "-model")
        self.query_one("#detail-text", Static).update(model_text(entry, detail))

    def show_dataset(self, entry: Entry, detail: DatasetDetail, card: dict | None) -> None:
        self.entry, self.dataset = entry, detail
        self.set_class(False, "-model")
        self.query_one("#detail-text", Static).update(dataset_text(entry, detail, card))
        config = self.query_one("#detail-config", Select)
        with self.prevent(Select.Changed):
            config.set_options([(c, c) for c in detail.configs])
            if detail.config in detail.configs:
                config.value = detail.config
        config.display = len(detail.configs) > 1
        self._fill_roles(detail)
        self._fill_preview(detail)

    def show_task(self, task: str) -> None:
        """The chosen model's task: its roles replace those shown, and a dataset on show is mapped again."""
        if task != self.model_task:
            self.model_task = task
            self.run_worker(self._mount_roles(task), group="roles", exclusive=True)

    def mapping(self) -> dict[str, str]:
        chosen = {}
        for field, select in self._role_selects().items():
            if isinstance(select.value, str):
                chosen[field] = select.value
        return chosen

    async def _mount_roles(self, task: str) -> None:
        box = self.query_one("#detail-roles", Grid)
        await box.remove_children()
        await box.mount_all(role_widgets(task))
        if self.dataset is not None:
            self._fill_roles(self.dataset)

    def _role_selects(self) -> dict[str, Select]:
        """The role selects mounted, by spec field (while the task changes, those of the one before)."""
        return {select.id.removeprefix("role-"): select for select in self.query("#detail-roles Select")}

    def _fill_roles(self, detail: DatasetDetail) -> None:
        guessed = columns.guess(self.model_task, detail.features or {})
        with self.prevent(Select.Changed):
            for field, select in self._role_selects().items():
                select.set_options([(c, c) for c in detail.features or {}])
                if field in guessed:
                    select.value = guessed[field]
        self._roles_changed()

    def _fill_preview(self, detail: DatasetDetail) -> None:
        table = self.query_one("#detail-preview", DataTable)
        table.clear(columns=True)
        names = list(detail.features or (detail.rows[0] if detail.rows else {}))
        for name in names:
            table.add_column(name, key=name)
        for index, row in enumerate(detail.rows):
            table.add_row(*(cell_text(row.get(name)) for name in names), key=str(index))
        self._show_image(0)

    def _show_image(self, index: int) -> None:
        """The row's image, in a widget mounted on the first one: textual-image is imported only through
        image_widget() (the describe worker's call), never on its own, since its import asks the terminal
        questions whose answers Textual would read as keys."""
        rows = self.dataset.rows if self.dataset else []
        picture = None
        if self.dataset and self.dataset.image_columns and index < len(rows):
            picture = rows[index].get(self.dataset.image_columns[0])
        shown = self.query("#detail-image")
        if shown:
            shown.first().image = picture
            shown.first().display = picture is not None
        elif picture is not None:
            self.mount(image_widget()(picture, id="detail-image"))

    @on(DataTable.RowHighlighted, "#detail-preview")
    def preview_row(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_image(event.cursor_row)

    @on(Select.Changed, "#detail-roles Select")
    def role_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._roles_changed()

    @on(Select.Changed, "#detail-config")
    def config_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and self.dataset and event.value != self.dataset.config:
            self.post_message(self.ConfigChosen(event.value))

    def _roles_changed(self) -> None:
        if self.dataset is None:
            return
        mapping = self.mapping()
        errors = columns.check(self.model_task, self.dataset.features, mapping, self.dataset.ref)
        checks = self.query_one("#detail-checks", Static)
        formats = {role.format for role in columns.roles(self.model_task) if role.format and mapping.get(role.field)}
        fit = f"✓ columns fit the {self.model_task} task" + "".join(f" as {fmt} data" for fmt in formats)
        checks.update(Text("\n".join(errors)) if errors else Text(fit))
        checks.set_class(bool(errors), "-bad")
        self.post_message(self.RolesChanged(mapping, errors))


def role_widgets(task: str) -> list[Widget]:
    """A label and a column select per role of the task's [data] (alternative formats' roles side by side)."""
    widgets: list[Widget] = []
    for role in columns.roles(task):
        label = f"{role.name} (optional):" if role.optional else f"{role.name}:"
        widgets += [Label(label, classes="role-label"),
                    Select([], prompt="column", id=f"role-{role.field}", compact=True)]
    return widgets


def cell_text(value) -> Text:
    """Plain text (data may hold brackets that markup would swallow), shortened."""
    if hasattr(value, "size") and hasattr(value, "mode"):  # a PIL image, maybe a preview of a larger one
        width, height = value.info.get("source_size", value.size)
        return Text(f"[image {width}×{height}]")
    text = str(value)
    return Text(text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…")


def _facts(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def model_text(entry: Entry, detail: ModelDetail) -> Table:
    judged = detail.trainability
    if judged.trainable:
        verdict = Text(f"✓ loratui can train a LoRA: {judged.task}, family {judged.family} ({judged.reason})")
    else:
        verdict = Text(f"✗ not trainable here: {judged.reason}")
    files = "\n".join(f"{name}  {human_size(size)}" for name, size in detail.files[:FILES_LISTED])
    if len(detail.files) > FILES_LISTED:
        files += f"\n… and {len(detail.files) - FILES_LISTED} more"
    outer = Table.grid()
    outer.add_row(Text(f"{entry.ref}  ({entry.source})", style="bold"))
    outer.add_row(verdict)
    outer.add_row(_facts([
        ("pipeline tag", detail.pipeline_tag or "–"),
        ("library", detail.library or "–"),
        ("size", human_size(detail.size_bytes)),
        ("downloads", human_count(detail.downloads) or "–"),
        ("likes", human_count(detail.likes) or "–"),
        ("gated", str(detail.gated) if detail.gated else "no"),
        ("private", "yes" if detail.private else "no"),
        ("tags", ", ".join(detail.tags) or "–"),
        (f"files ({len(detail.files)})", files or "–"),
    ]))
    return outer


def dataset_text(entry: Entry, detail: DatasetDetail, card: dict | None) -> Table:
    splits = ", ".join(
        f"{name} ({'?' if rows is None else rows} rows)" for name, rows in (detail.splits or {}).items()
    )
    features = ", ".join(f"{name}: {kind}" for name, kind in (detail.features or {}).items())
    description = detail.description or (card or {}).get("card", "")
    facts = [
        ("config", f"{detail.config} (of {len(detail.configs)}: {', '.join(detail.configs)})"),
        ("features", features or "unknown"),
        ("splits", splits or "unknown"),
        ("size", human_size(detail.size_bytes)),
    ]
    if card:
        facts += [
            ("downloads", human_count(card.get("downloads")) or "–"),
            ("likes", human_count(card.get("likes")) or "–"),
            ("gated", str(card["gated"]) if card.get("gated") else "no"),
        ]
    facts += [("note", note) for note in detail.notes]
    outer = Table.grid()
    outer.add_row(Text(f"{entry.ref}  ({entry.source})", style="bold"))
    if description:
        outer.add_row(Text(description[:600]))
    outer.add_row(_facts(facts))
    return outer
