"""The Textual dashboard. Importing this module must not import torch, diffusers, transformers or peft."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class LoratuiApp(App):
    TITLE = "loratui"

    def __init__(self, screen: str | None = None) -> None:
        super().__init__()
        self.initial_screen = screen or "runs"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No runs yet.", id="empty")
        yield Footer()


def run_app(screen: str | None = None) -> int:
    LoratuiApp(screen=screen).run()
    return 0
