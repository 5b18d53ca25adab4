"""The mixer's adapter rows: a weight per adapter, typed or nudged like a slider, and per-block scales where
the base is a diffusion UNet, laid out from the blocks the worker found (a LayoutResult)."""

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Label

from engine.adapters import blocks
from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.library.requests import LayoutResult, Weight

WEIGHT_STEP = 0.05
SLIDER_RANGE = (-2.0, 2.0)  # what the bar spans; a typed weight may go beyond it


def number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise LoratuiError(f"{what}: '{text}' is not a number", "type a number such as 0.8 or -0.5") from None


class WeightSlider(Widget, can_focus=True):
    """A bar from SLIDER_RANGE[0] to SLIDER_RANGE[1] with the weight marked; left/right nudge it."""

    BINDINGS = [
        Binding("left", "nudge(-1)", f"-{WEIGHT_STEP:g}"),
        Binding("right", "nudge(1)", f"+{WEIGHT_STEP:g}"),
    ]
    value: reactive[float] = reactive(1.0)

    class Nudged(Message):
        def __init__(self, slider: "WeightSlider", value: float) -> None:
            super().__init__()
            self.slider = slider
            self.value = value

    def __init__(self, value: float) -> None:
        super().__init__()
        self.set_reactive(WeightSlider.value, value)

    def render(self) -> str:
        low, high = SLIDER_RANGE
        width = max(3, self.size.width)
        mark = round((min(high, max(low, self.value)) - low) / (high - low) * (width - 1))
        zero = round(-low / (high - low) * (width - 1))  # where 0 is: left of it the adapter works backwards
        bar = ["━"] * mark + ["●"] + ["─"] * (width - mark - 1)
        if zero != mark:
            bar[zero] = "┼"
        return "".join(bar)

    def action_nudge(self, direction: int) -> None:
        self.value = round(self.value + direction * WEIGHT_STEP, 6)
        self.post_message(self.Nudged(self, self.value))


class BlockScales(Horizontal):
    """One box per part and block the adapter can be scaled at; a blank box keeps the row's weight."""

    def __init__(self, layout: LayoutResult) -> None:
        super().__init__(classes="block-scales")
        self.found = layout

    def compose(self) -> ComposeResult:
        for name in self.names():
            yield Label(name)
            yield Input(placeholder="w", type="number", name=name, compact=True)

    def names(self) -> list[str]:
        encoders = [part for part in blocks.TEXT_ENCODERS if part in self.found.parts]
        unet = [f"down.block_{i}" for i in self.found.down] + (["mid"] if self.found.mid else [])
        unet += [f"up.block_{i}" for i in self.found.up]
        return encoders + (unet if blocks.UNET in self.found.parts else [])

    def scale(self, weight: float) -> Weight:
        """The row's weight alone when every box is blank; else per-block scales, checked as the CLI does."""
        given = {box.name: number(box.value, f"{self.found.adapter} {box.name}")
                 for box in self.query(Input) if box.value.strip()}
        if not given:
            return weight
        unet = {"down": {}, "up": {}}
        scale: dict = {}
        for name in self.names():
            value = given.get(name, weight)
            if name in blocks.TEXT_ENCODERS:
                scale[name] = value
            elif name == "mid":
                unet["mid"] = value
            else:
                side, block = name.split(".")
                unet[side][block] = value
        if blocks.UNET in self.found.parts:
            scale[blocks.UNET] = {key: value for key, value in unet.items() if value != {}}
        found = self.found
        where = blocks.Layout(tuple(found.components), found.down, found.mid, found.up)
        blocks.validate(scale, where, adapter=found.adapter, parts=tuple(found.parts))
        return scale


class WeightRow(Vertical):
    """An adapter's name, its weight as a slider and as a typed number (negative allowed), its block scales."""

    def __init__(self, adapter: dict) -> None:
        super().__init__(classes="weight-row")
        self.adapter = adapter

    @property
    def offers_blocks(self) -> bool:
        family = registry.family(self.adapter.get("family"))
        return family is not None and family.blocks

    def compose(self) -> ComposeResult:
        weight = self.adapter["preferred_weight"]
        with Horizontal(classes="weight-line"):
            yield Label(f"#{self.adapter['id']} {self.adapter['name']}", classes="weight-name")
            yield WeightSlider(weight)
            yield Input(f"{weight:g}", type="number", classes="weight-input", compact=True)

    @on(WeightSlider.Nudged)
    def typed_from_slider(self, message: WeightSlider.Nudged) -> None:
        self.query_one(".weight-input", Input).value = f"{message.value:g}"

    @on(Input.Changed, ".weight-input")
    def slider_from_typed(self, event: Input.Changed) -> None:
        try:
            self.query_one(WeightSlider).value = float(event.value)
        except ValueError:
            pass  # half typed ("-", "0."): the weight is checked when an operation starts

    def show_blocks(self, layout: LayoutResult) -> None:
        if not self.query(BlockScales):
            self.mount(BlockScales(layout))

    def weight(self) -> Weight:
        """The weight, or per-block scales when any block box is filled; a LoratuiError names what is wrong."""
        value = number(self.query_one(".weight-input", Input).value, f"weight of {self.adapter['name']}")
        scales = self.query(BlockScales)
        return scales.first().scale(value) if scales else value
