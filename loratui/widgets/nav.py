"""The top line of every main screen: the screens by key (clickable), and what this one shows."""

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click
from textual.widgets import Label, Static


class NavTab(Label):
    def __init__(self, key: int, mode: str, title: str, active: bool) -> None:
        super().__init__(f" {key} {title} ", id=f"nav-{mode}", classes="-active" if active else "")
        self.mode = mode

    def on_click(self, event: Click) -> None:
        event.stop()
        self.app.action_switch_to(self.mode)


class MainNav(Horizontal):
    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        yield Label(" loratui ", id="nav-brand")
        for key, mode, title in self.app.main_tabs():
            yield NavTab(key, mode, title, mode == self.active)
        yield Static("", id="nav-note")

    def note(self, text: str) -> None:
        note = self.query_one("#nav-note", Static)
        if str(note.content) != text:
            note.update(text, layout=False)
