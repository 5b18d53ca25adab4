"""The line above the mixer's footer: what the library worker is doing for it, with a bar for steps."""

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from loratui.library.requests import Progress

IDLE = "ready · ctrl+g starts, esc cancels a running job"


class JobFooter(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stage = IDLE  # the text on show

    def compose(self) -> ComposeResult:
        yield Static(IDLE, id="job-stage", markup=False)
        yield ProgressBar(id="job-bar", show_eta=False)

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False

    def progressed(self, op: str, progress: Progress) -> None:
        self.stage = f"{op}: {progress}"
        self.query_one("#job-stage", Static).update(self.stage)
        bar = self.query_one(ProgressBar)
        bar.display = progress.total is not None
        if progress.total is not None:
            bar.update(total=progress.total, progress=progress.step)

    def ended(self, text: str) -> None:
        self.stage = text
        self.query_one("#job-stage", Static).update(text)
        self.query_one(ProgressBar).display = False
