"""What Browse lists and shows: one Entry per model or dataset, and the detail panels' contents."""

from dataclasses import dataclass, field

SOURCES = ("builtin", "cache", "local", "hub")


@dataclass(frozen=True)
class Trainability:
    """Whether loratui can train a LoRA on a model, for which task and family, and why (not)."""

    trainable: bool
    task: str | None = None
    family: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Entry:
    kind: str  # "model" or "dataset"
    source: str  # one of SOURCES
    ref: str  # what a spec's model.pretrained / data.source takes: builtin:NAME, a Hub id or a path
    title: str
    summary: str = ""
    task: str | None = None  # a pipeline tag or loratui task, when known
    downloads: int | None = None
    likes: int | None = None


@dataclass
class ModelDetail:
    ref: str
    source: str
    trainability: Trainability
    pipeline_tag: str | None = None
    library: str | None = None
    size_bytes: int | None = None
    downloads: int | None = None
    likes: int | None = None
    tags: list[str] = field(default_factory=list)
    gated: str | bool = False
    private: bool = False
    files: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass
class DatasetDetail:
    ref: str
    source: str
    config: str | None = None
    configs: list[str] = field(default_factory=list)
    description: str = ""
    features: dict[str, str] | None = None  # column -> type, as datasets names it
    splits: dict[str, int | None] | None = None  # split -> rows (None: unknown)
    size_bytes: int | None = None
    notes: list[str] = field(default_factory=list)  # how gaps the builder left were filled
    rows: list[dict] = field(default_factory=list)  # the first rows, images as PIL images
    image_columns: list[str] = field(default_factory=list)


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_count(n: int | None) -> str:
    if n is None:
        return ""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)
