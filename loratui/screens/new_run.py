"""A new run from the runs screen: the run settings with a fresh template for a task (the spec
`loratui spec new --task TASK` writes), or with a spec file, its path completing as it is typed."""

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from engine.tasks import DEFAULT_TASK, TASKS
from loratui.widgets.path_suggester import PathSuggester


@dataclass(frozen=True)
class NewRunChoice:
    """What the new run starts from: a fresh template for `task`, or the spec file at `path`."""

    task: str = ""
    path: str = ""


class NewRunScreen(ModalScreen[NewRunChoice | None]):
    CSS_PATH = "new_run.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("New run: start the run settings from", id="new-run-title")
            with Horizontal(classes="new-run-line"):
                yield Select([(task, task) for task in TASKS], value=DEFAULT_TASK, allow_blank=False,
                             id="new-run-task", compact=True)
                yield Button("Fresh template", id="new-run-template", variant="primary", compact=True)
            with Horizontal(classes="new-run-line"):
                yield Input(placeholder="or a spec file (→ completes the path)", id="new-run-path",
                            suggester=PathSuggester(), compact=True)
                yield Button("Open file", id="new-run-open", compact=True)

    def on_mount(self) -> None:
        self.query_one("#new-run-template", Button).focus()

    @on(Button.Pressed, "#new-run-template")
    def template_chosen(self) -> None:
        self.dismiss(NewRunChoice(task=str(self.query_one("#new-run-task", Select).value)))

    @on(Button.Pressed, "#new-run-open")
    @on(Input.Submitted, "#new-run-path")
    def file_chosen(self) -> None:
        path = self.query_one("#new-run-path", Input).value.strip()
        if not path:
            self.notify("type the path of a spec file", severity="warning")
            return
        self.dismiss(NewRunChoice(path=path))

    def action_cancel(self) -> None:
        self.dismiss(None)
