"""The mixer's settings for each operation, and the typed request (loratui.library.requests) they make.

generate shows the form the adapters' task tries them with (engine.tasks.registry.TryForm): an image's settings
(a sweep adds its weights), a prompt and the completion's length, a text to classify, or an image to segment;
combine takes a method, density, rank and name; merge a base and an output folder. Fields are read when an
operation starts: every field that cannot be read is named at once; what only the model can tell (a size it
cannot take) the worker reports.
"""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, Input, Label, Select

from engine.adapters.combine_options import DEFAULT_DENSITY, METHODS
from engine.errors import LoratuiError
from loratui.library.picks import DEFAULT_GRID_WEIGHTS
from loratui.library.requests import (
    CombineRequest,
    GenerateRequest,
    MergeRequest,
    Pick,
    PredictRequest,
    Weight,
)

ACTIONS = ("generate", "sweep", "combine", "merge")
FIRST_FIELD = {"image": "prompt", "text": "text-prompt", "classify": "text", "segment": "image",
               "combine": "name", "merge": "base"}  # focused when a panel opens


def _field(label: str, name: str, value: str = "", placeholder: str = "") -> Horizontal:
    return Horizontal(Label(label), Input(value, placeholder=placeholder, id=f"mix-{name}", compact=True),
                      classes="mix-field")


def panel(action: str, form: str) -> str:
    """The panel an action shows for adapters tried with `form`."""
    return form if action in ("generate", "sweep") else action


class MixerForm(Vertical):
    def __init__(self, base: str, out: str, *, methods: tuple[str, ...] | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.base, self.out, self.methods = base, out, methods or METHODS

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="image"):
            with Vertical(id="image"):
                yield _field("prompt", "prompt", placeholder="what to draw")
                yield _field("negative", "negative", placeholder="what to avoid (optional)")
                with Horizontal(classes="mix-row"):
                    yield _field("seed", "seed", placeholder="random")
                    yield _field("steps", "steps", "25")
                with Horizontal(classes="mix-row"):
                    yield _field("guidance", "guidance", "7.5")
                    yield _field("size", "size", placeholder="native (WxH)")
                yield _field("sweep weights", "sweep", ", ".join(f"{w:g}" for w in DEFAULT_GRID_WEIGHTS))
            with Vertical(id="text"):
                yield _field("prompt", "text-prompt", placeholder="what the model is to answer")
                with Horizontal(classes="mix-row"):
                    yield _field("seed", "text-seed", placeholder="random")
                    yield _field("max tokens", "max-tokens", "40")
                yield _field("temperature", "temperature", "0", placeholder="0: greedy")
            with Vertical(id="classify"):
                yield _field("text", "text", placeholder="a text to classify")
                yield _field("text pair", "text-pair", placeholder="its second text (optional)")
            with Vertical(id="segment"):
                yield _field("image", "image", placeholder="an image file to segment")
                yield _field("mask out", "mask-out", placeholder="beside the image (NAME.mask.png)")
            with Vertical(id="combine"):
                yield _field("name", "name", placeholder="the new adapter's name")
                with Horizontal(classes="mix-field"):
                    yield Label("method")
                    yield Select([(m, m) for m in self.methods], value="cat" if "cat" in self.methods
                                 else self.methods[0], allow_blank=False, id="mix-method", compact=True)
                with Horizontal(classes="mix-row"):
                    yield _field("density", "density", placeholder=f"(0-1], {DEFAULT_DENSITY:g} if empty")
                    yield _field("rank", "rank", placeholder="largest parent")
            with Vertical(id="merge"):
                yield _field("base", "base", self.base, placeholder="folder, builtin:NAME or Hub id")
                yield _field("out", "out", self.out, placeholder="a new or empty folder")

    def show(self, action: str, form: str) -> None:
        self.query_one(ContentSwitcher).current = panel(action, form)
        self.query_one("#mix-sweep").parent.display = action == "sweep"

    def first_field(self, action: str, form: str) -> Input:
        return self.query_one(f"#mix-{FIRST_FIELD[panel(action, form)]}", Input)

    def request(self, action: str, form: str, weights: list[tuple[dict, Weight]]):
        """The request for `action` on adapters tried with `form`, with these (library row, weight or per-block
        scales) pairs."""
        errors: list[str] = []
        if action == "combine":
            request = self._combine(weights, errors)
        elif action == "merge":
            base, out = self._text("base", errors), self._text("out", errors)
            picks, scales = _picks(weights)
            request = MergeRequest(base=base, adapters=picks, out=out, scales=scales)
        elif form == "text":
            request = self._text_request(weights, errors)
        elif form in ("classify", "segment"):
            request = self._predict(form, weights, errors)
        else:
            request = self._image(action, weights, errors)
        if errors:
            raise LoratuiError(f"{action}: " + "; ".join(errors), "fix the fields named above")
        return request

    def _image(self, action: str, weights, errors: list[str]) -> GenerateRequest:
        size = self._text("size")
        width = height = None
        if size:
            try:
                width, height = (int(side) for side in size.lower().split("x"))
            except ValueError:
                errors.append(f"size: '{size}' is not WxH (e.g. 512x512)")
        settings = {"prompt": self._text("prompt"), "negative": self._text("negative") or None,
                    "seed": self._number("seed", int, errors), "steps": self._number("steps", int, errors, required=True),
                    "guidance": self._number("guidance", float, errors, required=True), "width": width, "height": height}
        if action == "sweep":
            columns = [self._number_text(text, "sweep weights", float, errors)
                       for text in self._text("sweep").replace(",", " ").split()]
            if not columns:
                errors.append("sweep weights: empty")
            return GenerateRequest(**settings, adapters=[Pick(str(row["id"])) for row, _ in weights], grid=True,
                                   grid_weights=columns)
        picks, scales = _picks(weights)
        return GenerateRequest(**settings, adapters=picks, scales=scales)

    def _text_request(self, weights, errors: list[str]) -> GenerateRequest:
        picks, scales = _picks(weights)
        return GenerateRequest(prompt=self._text("text-prompt", errors), adapters=picks, scales=scales,
                               seed=self._number("text-seed", int, errors),
                               max_new_tokens=self._number("max-tokens", int, errors, required=True),
                               temperature=self._number("temperature", float, errors, required=True))

    def _predict(self, form: str, weights, errors: list[str]) -> PredictRequest:
        row = weights[0][0]
        if form == "classify":
            return PredictRequest(adapter=str(row["id"]), text=self._text("text", errors),
                                  text_pair=self._text("text-pair") or None)
        return PredictRequest(adapter=str(row["id"]), image=self._text("image", errors),
                              out=self._text("mask-out") or None)

    def _combine(self, weights, errors: list[str]) -> CombineRequest:
        plain = []
        for row, weight in weights:
            if isinstance(weight, dict):
                errors.append(f"{row['name']}: combine takes one weight per adapter (clear its block scales)")
            plain.append(weight)
        return CombineRequest(adapters=[str(row["id"]) for row, _ in weights], name=self._text("name", errors),
                              weights=plain, method=self.query_one("#mix-method", Select).value,
                              density=self._number("density", float, errors),
                              rank=self._number("rank", int, errors))

    def _text(self, name: str, errors: list[str] | None = None) -> str:
        text = self.query_one(f"#mix-{name}", Input).value.strip()
        if not text and errors is not None:
            errors.append(f"{name}: empty")
        return text

    def _number(self, name: str, kind: type, errors: list[str], *, required: bool = False):
        text = self._text(name, errors if required else None)
        return self._number_text(text, name, kind, errors) if text else None

    @staticmethod
    def _number_text(text: str, name: str, kind: type, errors: list[str]):
        try:
            return kind(text)
        except ValueError:
            errors.append(f"{name}: '{text}' is not {'a whole number' if kind is int else 'a number'}")
            return None


def _picks(weights: list[tuple[dict, Weight]]) -> tuple[list[Pick], dict]:
    """Picks by id; an adapter given per-block scales goes without a weight and with its scales."""
    picks = [Pick(str(row["id"]), None if isinstance(weight, dict) else weight) for row, weight in weights]
    scales = {str(row["id"]): weight for row, weight in weights if isinstance(weight, dict)}
    return picks, scales
