"""The latest validation sample, drawn in the terminal by textual-image (Kitty or Sixel graphics where the
terminal has them, half-blocks elsewhere). The image arrives decoded by the watcher, off the UI thread."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image.widget import Image


class SamplePanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="sample-caption")
        yield Image(id="sample-image")

    def show(self, sample: dict | None, image) -> None:
        key = sample and f"{sample['path']}@{sample.get('step')}"
        if key == self.shown:
            return
        self.shown = key
        caption = self.query_one("#sample-caption", Static)
        if sample is None:
            caption.update("no samples yet")
            return
        prompt = sample.get("prompt") or ""
        if image is None:
            caption.update(f"step {sample.get('step')}: cannot read {sample['path']}")
        else:
            caption.update(f"step {sample.get('step')}: {prompt}")
        self.query_one("#sample-image", Image).image = image
