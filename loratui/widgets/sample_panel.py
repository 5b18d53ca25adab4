"""The latest validation sample, drawn in the terminal by textual-image: Sixel or Kitty graphics where the
terminal has them, half-blocks elsewhere (see graphics.py). The image arrives decoded by the watcher."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from loratui.widgets.graphics import image_widget


class SamplePanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="sample-caption")

    def show(self, sample: dict | None, image) -> None:
        key = sample and f"{sample['path']}@{sample.get('step')}"
        if key == self.shown:
            return
        self.shown = key
        caption = self.query_one("#sample-caption", Static)
        shown = self.query("#sample-image")
        if image is None:
            shown.remove()  # never an older image under a caption that is not about it
        if sample is None:
            caption.update("no samples yet")
            return
        if image is None:
            caption.update(f"step {sample.get('step')}: cannot read {sample['path']}")
            return
        caption.update(f"step {sample.get('step')}: {sample.get('prompt') or ''}")
        if shown:
            shown.first().image = image
        else:
            self.mount(image_widget()(image, id="sample-image"))

    def clear(self) -> None:
        """Another run is shown: nothing of this one's stays."""
        self.show(None, None)
