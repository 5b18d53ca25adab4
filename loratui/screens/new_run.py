"""A new run from the runs screen: the run settings with a fresh template for a task (the spec
`loratui spec new --task TASK` writes), or with a spec file, its path completing as it is typed. A path
that cannot be read is said inside the dialog, the path kept for correcting; Tab visits every field in the
order shown."""

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from engine.tasks import DEFAULT_TASK, TASKS
from loratui.screens.dialog import WorkingDialog
from loratui.widgets.path_suggester import PathSuggester


@dataclass(frozen=True)
class NewRunChoice:
    """What the new run starts from: a fresh template for `task`, or the spec file at `path`."""

    task: str = ""
    path: str = ""


class NewRunScreen(WorkingDialog):
    CSS_PATH = "new_run.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", can_focus=False):  # Tab goes to the fields
            yield Static("New run: start the run settings from", id="new-run-title")
            yield Label("a fresh template for the task")
            with Horizontal(classes="new-run-line"):
                yield Select([(task, task) for task in TASKS], value=DEFAULT_TASK, allow_blank=False,
                             id="new-run-task")
                yield Button("Fresh template", id="new-run-template", variant="primary")
            yield Label("or a spec file (→ takes the completion)")
            with Horizontal(classes="new-run-line"):
                yield Input(placeholder="path/to/run.toml", id="new-run-path", suggester=PathSuggester())
                yield Button("Open file", id="new-run-open")
            yield Static(id="dialog-problem")
            with Horizontal(id="buttons"):
                yield Button("Cancel (esc)", id="cancel")

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
            self.show_problem("type the path of a spec file")
            return
        self.run(path)

    def perform(self, path: str) -> NewRunChoice:
        """The file is read here first, so that a wrong path is corrected in the dialog."""
        from pathlib import Path

        from engine.spec import read_spec_file

        read_spec_file(Path(path).expanduser().absolute())
        return NewRunChoice(path=path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
