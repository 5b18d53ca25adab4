"""The latest validation sample, drawn in the terminal by textual-image: Sixel or Kitty graphics where the
terminal has them, half-blocks elsewhere (see graphics.py). The image arrives decoded by the watcher. Beside
it, on its left, the run's step-0 sample when there is one: the base model's, before any training, with the
same prompt and seed, so what the adapter learned shows.

A task whose samples are text (causal-lm) shows its recent completions instead, newest step first, each
prompt with what the model answered, wrapped to the pane."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
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
        yield Static("left: the base model (step 0, no training); right: the adapter", id="sample-compare")
        yield Horizontal(id="sample-images")
        with VerticalScroll(id="sample-texts", can_focus=False):  # the log keeps the focus; the wheel scrolls
            yield Static(id="sample-text")

    def show(self, sample: dict | None, image, texts: tuple[dict, ...] = (), base: dict | None = None,
             base_image=None) -> None:
        compared = base_image is not None and image is not None and bool(sample) and sample.get("step") != 0
        key = texts or (sample and (f"{sample['path']}@{sample.get('step')}", image is not None,
                                    compared and base["path"]))
        if key == self.shown:
            return
        self.shown = key
        caption = self.query_one("#sample-caption", Static)
        scroll = self.query_one("#sample-texts", VerticalScroll)
        scroll.display = bool(texts)
        self.query_one("#sample-compare").display = compared
        self._place("sample-base", base_image if compared else None)
        self._place("sample-image", image)  # never an older image under a caption that is not about it
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

    def _place(self, name: str, image) -> None:
        """Show `image` in the image widget `name` (the base's before the adapter's), or remove that widget."""
        shown = self.query(f"#{name}")
        if image is None:
            shown.remove()
        elif shown:
            shown.first().image = image
        else:
            images = self.query_one("#sample-images", Horizontal)
            widget = image_widget()(image, id=name)
            if name == "sample-base" and images.children:
                images.mount(widget, before=0)
            else:
                images.mount(widget)

    def clear(self) -> None:
        """Another run is shown: nothing of this one's stays."""
        self.show(None, None)
