"""The latest validation sample, drawn in the terminal by textual-image: Sixel or Kitty graphics where the
terminal has them, half-blocks elsewhere (see graphics.py). The image arrives decoded by the watcher.

A task whose samples are text (causal-lm) shows its recent completions instead, newest step first, each
prompt with what the model answered, wrapped to the pane."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from loratui.widgets.graphics import image_widget


def completions(samples) -> Text:
    """Text samples (dicts with step, prompt, text) as `step N  prompt` over `-> completion`, one after another."""
    shown = Text()
    for number, sample in enumerate(samples):
        if number:
            shown.append("\n\n")
        shown.append(f"step {sample['step']}  ", style="bold")
        shown.append(sample.get("prompt") or "", style="italic")
        shown.append("\n-> ", style="dim")
        shown.append(sample["text"])
    return shown


class SamplePanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: object = None

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="sample-caption")
        with VerticalScroll(id="sample-texts", can_focus=False):  # the log keeps the focus; the wheel scrolls
            yield Static(id="sample-text")

    def show(self, sample: dict | None, image, texts: tuple[dict, ...] = ()) -> None:
        key = texts or (sample and f"{sample['path']}@{sample.get('step')}")
        if key == self.shown:
            return
        self.shown = key
        caption = self.query_one("#sample-caption", Static)
        shown = self.query("#sample-image")
        scroll = self.query_one("#sample-texts", VerticalScroll)
        scroll.display = bool(texts)
        if image is None:
            shown.remove()  # never an older image under a caption that is not about it
        if texts:
            caption.update(f"completions of the validation prompts, newest first (step {texts[0]['step']})")
            self.query_one("#sample-text", Static).update(completions(texts))
            return
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
