"""The Library's filter row: a full-text filter box and one compact Select per facet (family, task, base model,
tag). Its changes bubble up as Input.Changed / Select.Changed; `library_query()` reads them as a LibraryQuery."""

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Select

from loratui.library.views import FACETS, LibraryQuery

PROMPTS = {"family": "family", "task": "task", "base": "base model", "tag": "tag"}


class LibraryFacets(Horizontal):
    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter: name, tag, trigger, notes", id="filter", compact=True)
        for name in FACETS:
            yield Select([], prompt=PROMPTS[name], id=f"facet-{name}", compact=True)

    def set_values(self, values: dict[str, list[str]]) -> None:
        """Offer each facet's values, keeping a chosen one that still exists."""
        for name in FACETS:
            select = self.query_one(f"#facet-{name}", Select)
            chosen = select.value
            select.set_options((value, value) for value in values.get(name, []))
            if chosen in values.get(name, []):
                select.value = chosen

    def library_query(self) -> LibraryQuery:
        chosen = {name: self.query_one(f"#facet-{name}", Select).value for name in FACETS}
        return LibraryQuery(self.query_one("#filter", Input).value,
                            **{name: None if value is Select.NULL else value for name, value in chosen.items()})
