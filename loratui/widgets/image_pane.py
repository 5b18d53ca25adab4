"""An image the mixer made, drawn by textual-image (see graphics.py), under a one-line caption."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from loratui.widgets.graphics import image_widget


class ImagePane(Vertical):
    def __init__(self, empty: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.empty = empty
        self.caption = empty

    def compose(self) -> ComposeResult:
        yield Static(self.empty, id="image-caption", markup=False)

    def show(self, caption: str, image) -> None:
        """`image` is a decoded PIL image (image_widget() was first called off the UI thread), or None for a
        result that is text alone."""
        self.caption = caption
        self.query_one("#image-caption", Static).update(caption)
        shown = self.query("#pane-image")
        if image is None:
            shown.remove()
        elif shown:
            shown.first().image = image
        else:
            self.mount(image_widget()(image, id="pane-image"))
