"""What the library operations take and give back: typed requests, results and progress, and their JSON forms.

The CLI builds these from its arguments and calls loratui.library's operations in its own process; the
dashboard sends them to the worker process (loratui.library.worker) as JSON. No torch here: the dashboard
imports this module.
"""

import base64
import dataclasses
import io
from dataclasses import dataclass, field
from typing import ClassVar

from engine.errors import LoratuiError
from loratui.browse.entries import DatasetDetail

PROTOCOL = 3  # of the worker's JSON lines (loratui.library.worker); bumped when a message changes
Weight = float | dict  # a weight, or per-block scales (engine.adapters.blocks)


@dataclass(frozen=True)
class Pick:
    """One library adapter chosen for an operation, by id (12, #12) or name."""

    ref: str
    weight: float | list[float] | None = None  # None: its preferred weight; a list: a contact sheet's columns


@dataclass(frozen=True)
class Progress:
    """A stage of an operation; for steps (denoising, tokens) also how far along it is."""

    stage: str  # "loading base", "loading adapters", "denoising", "generating", "combining", "saving"...
    step: int | None = None
    total: int | None = None

    def __str__(self) -> str:
        return self.stage if self.step is None else f"{self.stage} step {self.step}/{self.total}"


@dataclass(frozen=True)
class GenerateRequest:
    """A test image, a contact sheet (grid) or a text completion."""

    op: ClassVar[str] = "generate"
    prompt: str
    adapters: list[Pick] = field(default_factory=list)
    scales: dict[str, Weight] = field(default_factory=dict)  # adapter id or name -> per-block scales
    base: str | None = None  # None: the base model the adapters record
    negative: str | None = None
    seed: int | None = None  # None: random, recorded
    steps: int = 25
    guidance: float = 7.5
    width: int | None = None  # None: the model's native size
    height: int | None = None
    out: str | None = None  # PNG path; None: LORATUI_HOME/generations/...
    grid: bool = False
    grid_weights: list[float] | None = None  # columns for adapters picked without a list
    max_new_tokens: int = 40
    temperature: float = 0.0
    raw: bool = False  # an LLM prompt as it is, not through the adapter's chat template
    device: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> "GenerateRequest":
        return _build(cls, {**data, "adapters": [_build(Pick, p) for p in data.get("adapters", [])]})


@dataclass(frozen=True)
class GenerateResult:
    record: dict  # the generations row, JSON decoded
    path: str | None  # the PNG (images)
    text: str | None  # the completion (language models)
    seed: int
    base_loads: int  # base models the session holder has loaded so far: 1 while the base stays warm


@dataclass(frozen=True)
class PredictRequest:
    """Try a classification adapter on a text, or a segmentation adapter on an image."""

    op: ClassVar[str] = "predict"
    adapter: str                 # id or name
    text: str | None = None      # a text to classify
    text_pair: str | None = None
    image: str | None = None     # an image to segment
    base: str | None = None      # default: the base the adapter records
    out: str | None = None       # the mask PNG (default: beside the image, NAME.mask.png)


@dataclass(frozen=True)
class PredictResult:
    record: dict
    probabilities: dict[str, float] | None = None  # class -> probability
    mask: str | None = None  # the coloured mask PNG
    image: str | None = None  # the image it segments


@dataclass(frozen=True)
class CombineRequest:
    """A new library adapter made of two or more others."""

    op: ClassVar[str] = "combine"
    adapters: list[str]
    name: str
    weights: list[float] | None = None  # None: each adapter's preferred weight
    method: str = "cat"
    density: float | None = None
    rank: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class CombineResult:
    entry: dict  # the library row of the result
    parents: list[str]
    weights: list[float]
    existed: bool  # the same bytes were already in the library, under entry["name"]


@dataclass(frozen=True)
class MergeRequest:
    """A full model folder: weighted adapters baked into a base."""

    op: ClassVar[str] = "merge"
    base: str
    adapters: list[Pick]
    out: str  # a new folder, or with single_file a .safetensors file
    scales: dict[str, Weight] = field(default_factory=dict)
    device: str | None = None
    force: bool = False  # replace `out` if it is there (once the new one is whole)
    dtype: str | None = None  # float16, bfloat16 or float32 to save in; None: as merged (float32)
    single_file: bool = False  # one checkpoint file as A1111 and ComfyUI load (families that have a layout)

    @classmethod
    def from_json(cls, data: dict) -> "MergeRequest":
        return _build(cls, {**data, "adapters": [_build(Pick, p) for p in data.get("adapters", [])]})


@dataclass(frozen=True)
class MergeResult:
    out: str
    adapters: list[dict]  # {"id", "name", "weight"} with "scales" for per-block scales


@dataclass(frozen=True)
class CheckRequest:
    """Does an adapter fit a base model (default: the one it records)? Headers only."""

    op: ClassVar[str] = "check"
    adapter: str
    base: str | None = None


@dataclass(frozen=True)
class CheckResult:
    adapter: str
    base: str
    fits: bool
    base_family: str | None
    adapter_family: str | None
    checked: int
    matched: int
    missing: list[str]
    mismatched: list[str]


@dataclass(frozen=True)
class LayoutRequest:
    """The blocks per-block scales can address for an adapter on a base (loaded in the worker)."""

    op: ClassVar[str] = "layout"
    adapter: str
    base: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class LayoutResult:
    adapter: str
    base: str
    parts: list[str]  # components the adapter has weights for
    components: list[str]  # LoRA-loadable components of the pipeline
    down: dict[int, int]  # block index -> transformers, only blocks that have some
    mid: int
    up: dict[int, int]

    @classmethod
    def from_json(cls, data: dict) -> "LayoutResult":
        ints = {side: {int(k): v for k, v in data.get(side, {}).items()} for side in ("down", "up")}
        return _build(cls, {**data, **ints})


@dataclass
class Estimate:
    """What a run would cost before it starts (loratui.browse.estimate works it out); None where unknown."""

    rows: int | None = None
    steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    trainable_params: int | None = None
    base_params: int | None = None
    memory_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EstimateRequest:
    """The run settings' estimate for a valid spec, with preflight's problems (what `spec validate` finds)."""

    op: ClassVar[str] = "estimate"
    values: dict  # the spec, as its TOML reads
    split_counts: dict[str, int | None] | None = None  # the dataset's rows per split; None: read them
    full: bool = False  # also check a Hub dataset (downloads it); local and built-in data always are


@dataclass(frozen=True)
class EstimateResult:
    estimate: Estimate
    problems: list[str]  # preflight's errors, each `section.field: problem`
    checked: bool  # preflight ran (the data is local or built-in, or `full` was asked)

    @classmethod
    def from_json(cls, data: dict) -> "EstimateResult":
        return _build(cls, {**data, "estimate": _build(Estimate, data.get("estimate") or {})})


@dataclass(frozen=True)
class DatasetRequest:
    """Browse's detail of a dataset: what it holds and its first rows (a built-in is built first)."""

    op: ClassVar[str] = "dataset"
    ref: str
    config: str | None = None
    rows: int = 8


@dataclass(frozen=True)
class DatasetResult:
    """In JSON, the preview rows' images travel as PNG (base64) no larger than PREVIEW_PX a side, with the size
    the dataset holds them at; from_json makes them PIL images again, that size in info["source_size"]."""

    detail: DatasetDetail

    @classmethod
    def from_json(cls, data: dict) -> "DatasetResult":
        detail = _build(DatasetDetail, data.get("detail") or {})
        for row in detail.rows:
            for column in detail.image_columns:
                if isinstance(row.get(column), dict) and "png" in row[column]:
                    row[column] = _image(row[column])
        return cls(detail)

    def to_json(self) -> dict:
        rows = [{name: _png(value) if name in self.detail.image_columns else value for name, value in row.items()}
                for row in self.detail.rows]
        return {"detail": {**dataclasses.asdict(dataclasses.replace(self.detail, rows=[])), "rows": rows}}


PREVIEW_PX = 1024  # Browse draws a preview a few dozen cells wide: a photo's full size would only slow the pipe


def _png(image):
    if not hasattr(image, "save"):
        return image  # not decoded into a picture: passed on as it is
    size = list(image.size)
    if max(size) > PREVIEW_PX:
        image = image.copy()
        image.thumbnail((PREVIEW_PX, PREVIEW_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"png": base64.b64encode(buffer.getvalue()).decode("ascii"), "size": size}


def _image(sent: dict):
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(sent["png"])))
    image.load()
    image.info["source_size"] = tuple(sent["size"])
    return image

REQUESTS = {cls.op: cls for cls in (GenerateRequest, PredictRequest, CombineRequest, MergeRequest, CheckRequest,
                                    LayoutRequest, EstimateRequest, DatasetRequest)}
RESULTS = {"generate": GenerateResult, "predict": PredictResult, "combine": CombineResult, "merge": MergeResult, "check": CheckResult,
           "layout": LayoutResult, "estimate": EstimateResult, "dataset": DatasetResult}


def to_json(obj) -> dict:
    writer = getattr(obj, "to_json", None)
    return writer() if writer else dataclasses.asdict(obj)


def from_json(cls, data: dict):
    """A request or result from its JSON form; unknown or missing fields are one-line errors."""
    loader = getattr(cls, "from_json", None)
    return loader(data) if loader else _build(cls, data)


def _build(cls, data: dict):
    if not isinstance(data, dict):
        raise LoratuiError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LoratuiError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}",
                           f"allowed: {', '.join(sorted(names))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise LoratuiError(f"{cls.__name__}: {exc}") from None
