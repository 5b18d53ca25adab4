"""What the base model and the data say before anything loads (no torch): the model's config and its layers as
transformers will name them, and the class names. Shared by preflight, the trainer and predict."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine import builtin, model_kind, reach
from engine.errors import LoratuiError
from engine.layer_names import RENAMES, loaded_name
from engine.model_index import _fetch, header_shapes

LABELS_FILE = "id2label.json"
PROCESSOR_FILE = "preprocessor_config.json"
SEGMENTER_HINT = "name a segmentation model: a transformers folder, a Hub id (nvidia/mit-b0) or builtin:tiny-segformer"


@dataclass(frozen=True)
class ModelFiles:
    pretrained: str
    revision: str
    folder: Path  # holds config.json (for a Hub model: its snapshot in the HF cache)
    config: dict
    hub: bool

    @property
    def model_type(self) -> str:
        return self.config.get("model_type", "")

    @property
    def kind(self) -> model_kind.ModelKind:
        return model_kind.from_configs(config=self.config)

    @property
    def family(self) -> str | None:
        return self.kind.family


def model_files(model) -> ModelFiles:
    """The [model] section's config.json, read or fetched; LoratuiError if there is none."""
    ref, path = model.pretrained, Path(model.pretrained).expanduser()
    if builtin.is_builtin(ref):
        folder = builtin.path(ref)
    elif path.is_dir():
        folder = path
    elif ref.startswith((".", "/", "~")):
        raise LoratuiError(f"model.pretrained: {ref} does not exist", hint="check the path")
    else:
        folder = _fetch(ref, "config.json", model.revision).parent
    if not (folder / "config.json").is_file():
        kind = model_kind.from_folder(folder)
        what = f"({kind.what}) is trained by the {kind.task} task" if kind.task else "has no config.json"
        raise LoratuiError(f"model.pretrained: {ref} {what}, not semantic-segmentation", hint=SEGMENTER_HINT)
    hub = not builtin.is_builtin(ref) and not path.is_dir()
    return ModelFiles(ref, model.revision, folder, json.loads((folder / "config.json").read_text()), hub)


def processor_problem(info: ModelFiles) -> str | None:
    """Why the model's image processor (preprocessor_config.json) cannot be had, if it cannot; fetched for a Hub
    model (LoratuiError when out of reach)."""
    if (info.folder / PROCESSOR_FILE).is_file():
        return None
    if info.hub:
        _fetch(info.pretrained, PROCESSOR_FILE, info.revision)
        return None
    return (f"model.pretrained: {info.pretrained} has no {PROCESSOR_FILE} (its image processor, which training "
            "and stock inference both use)")


def pretrained_ref(ref: str) -> str:
    """What from_pretrained takes: a built-in's folder, a local folder, or the Hub id."""
    if builtin.is_builtin(ref):
        return builtin.resolve(ref)
    path = Path(ref).expanduser()
    return str(path) if path.is_dir() else ref


def layers(info: ModelFiles) -> dict[str, str] | None:
    """Modules a LoRA can wrap, as transformers names them once loaded, and their kind (linear, conv or
    attention, i.e. torch's MultiheadAttention), from the weights' headers; None when the names are not known
    before loading (no local weights, or a model type whose keys transformers renames and this module does not)."""
    if info.model_type not in RENAMES:
        return None
    found = {}
    for file in sorted(info.folder.glob("*.safetensors")):
        for key, shape in header_shapes(file).items():
            if key.endswith(".in_proj_weight"):
                found[loaded_name(key.removesuffix(".in_proj_weight"), info.model_type)] = "attention"
            elif key.endswith(".weight") and len(shape) >= 2:
                found[loaded_name(key.removesuffix(".weight"), info.model_type)] = "linear" if len(shape) == 2 else "conv"
    return found or None


def weight_shapes(info: ModelFiles) -> dict[str, list[int]]:
    """Every tensor of the model's headers by its loaded name."""
    return {loaded_name(key, info.model_type): shape for file in sorted(info.folder.glob("*.safetensors"))
            for key, shape in header_shapes(file).items()}


def class_names(data, config: dict | None) -> tuple[list[str], str]:
    """(the class names in id order, where they come from): data.labels; else the id2label.json beside the data
    (a folder's, a data file's folder's, or a Hub dataset's); else the model's own, if it segments already."""
    if data.labels:
        return list(data.labels), "data.labels"
    path = _labels_file(data.source)
    if path is not None:
        return _read_labels(path, data.source), f"{LABELS_FILE} of {data.source}"
    architectures = (config or {}).get("architectures") or []
    id2label = (config or {}).get("id2label") or {}
    names = [id2label.get(str(i), "") for i in range(len(id2label))]
    generic = all(re.fullmatch(r"LABEL_\d+", name) for name in names)
    if any(a.endswith("ForSemanticSegmentation") for a in architectures) and all(names) and not generic:
        return names, "the model's id2label"
    raise LoratuiError(f"data.labels: no class names for the masks of {data.source}: no {LABELS_FILE} beside the "
                       "data and the model has no segmentation labels",
                       hint=f'list them in id order, e.g. labels = ["background", "road"], or add an {LABELS_FILE}')


def _labels_file(source: str) -> Path | None:
    if builtin.is_builtin(source):
        root = builtin.path(source)
    else:
        path = Path(source).expanduser()
        root = path if path.is_dir() else path.parent if path.is_file() else None
        if root is None:
            return _hub_labels_file(source)
    return root / LABELS_FILE if (root / LABELS_FILE).is_file() else None


def _hub_labels_file(repo: str) -> Path | None:
    """A Hub dataset's id2label.json (as segments/sidewalk-semantic has), fetched or from the HF cache."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, LABELS_FILE, repo_type="dataset", local_files_only=not reach.hub().reachable))
    except Exception:  # absent, private, or out of reach: the model's labels or data.labels are asked for instead
        return None


def _read_labels(path: Path, source: str) -> list[str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        names = {int(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        raise LoratuiError(f"data.source: {LABELS_FILE} of {source} is not a JSON object of class ids to names",
                           hint='write it as {"0": "background", "1": "road"}, or set data.labels') from None
    missing = [i for i in range(len(names)) if i not in names]
    if missing:
        raise LoratuiError(f"data.source: {LABELS_FILE} of {source} has no name for class {missing[0]} "
                           f"(ids must run 0 to {len(names) - 1})", hint="fix the file, or set data.labels")
    return [names[i] for i in range(len(names))]
