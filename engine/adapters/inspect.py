"""Everything an adapter file says about itself.

inspect_file reads headers only (plus one pass over the bytes for the hash and the inf/nan scan), so
registering an adapter does not import torch.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.adapters import formats
from engine.adapters.names import COMPANION_NAMES, CONFIG_NAME, WEIGHT_NAMES
from engine.adapters.safeload import (
    PICKLE_SUFFIXES,
    check_finite,
    read_header,
    refuse_pickle,
)
from engine.errors import LoratuiError

# Header keys loratui writes into the adapters it trains; own_metadata() builds them.
OWN_KEYS = ("base_model", "family", "rank", "alpha", "target_modules", "steps", "spec_hash", "trigger_words")


@dataclass
class AdapterInfo:
    path: Path                      # what was given: a file, or a PEFT / diffusers folder
    weights: Path                   # the safetensors file inside it
    format: str                     # diffusers, kohya, peft
    family: str | None              # sd1, sd2, sdxl, llm, text; None when nothing tells
    base_model: str | None
    rank: int | None
    alpha: float | None             # None when the file does not record it (loaders then use alpha = rank)
    target_modules: list[str]
    metadata: dict                  # header entries (JSON values decoded), adapter_config, derived facts
    num_tensors: int
    sha256: str
    size: int
    files: list[Path] = field(default_factory=list)
    trigger_words: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(path=str(self.path), weights=str(self.weights), files=[str(f) for f in self.files])
        return data


def own_metadata(**facts) -> dict[str, str]:
    """Header entries (`loratui.<key>`) for an adapter loratui saves; values JSON-encoded when not strings."""
    unknown = set(facts) - set(OWN_KEYS)
    if unknown:
        raise ValueError(f"unknown loratui header keys: {sorted(unknown)}")
    return {f"loratui.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in facts.items() if v is not None}


def locate(path: Path | str) -> tuple[Path, dict | None, list[Path]]:
    """The safetensors file of an adapter path, its adapter_config (if a PEFT folder) and all its files (a PEFT
    folder's companions too: its tokenizer and generation config)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LoratuiError(f"no such file or folder: {path}", "give a .safetensors file, a PEFT folder or a Hub id")
    if path.is_file():
        refuse_pickle(path)
        return path, None, [path]
    config_path = path / CONFIG_NAME
    config = _read_config(config_path) if config_path.is_file() else None
    candidates = [path / n for n in WEIGHT_NAMES if (path / n).is_file()] or sorted(path.glob("*.safetensors"))
    if not candidates:
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            refuse_pickle(path / pickles[0])
        raise LoratuiError(f"{path} holds no .safetensors weights",
                           "a PEFT folder needs adapter_config.json and adapter_model.safetensors")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates[:4])
        raise LoratuiError(f"{path} holds several weight files ({names})", "import one of the files directly")
    files = [candidates[0]] + ([config_path] if config is not None else [])
    if config is not None:
        files += [path / name for name in COMPANION_NAMES if (path / name).is_file()]
    return candidates[0], config, files


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoratuiError(f"{path} is not valid JSON ({exc.__class__.__name__})",
                           "re-save the adapter with peft's save_pretrained") from None
    if not isinstance(config, dict):
        raise LoratuiError(f"{path} is not a JSON object", "re-save the adapter with peft's save_pretrained")
    return config


def _saved_whole(key: str, config: dict | None) -> bool:
    """A tensor a PEFT adapter declares beyond its LoRA pairs: a module it saves whole (modules_to_save: a new
    head, grown embeddings) or a bias it trains (bias = all or lora_only)."""
    if config is None:
        return False
    parts = key.split(".")
    saved = config.get("modules_to_save") or []
    if any(name in parts or ".".join(parts).count(f".{name}.") for name in saved):
        return True
    return parts[-1] == "bias" and config.get("bias", "none") != "none"


def inspect_file(path: Path | str, *, allow_nonfinite: bool = False) -> AdapterInfo:
    """Format, family, rank, alpha, targets and metadata of an adapter; refuses anything unsafe or broken."""
    weights, config, files = locate(path)
    header = read_header(weights)
    layout = formats.parse(header, config)
    warnings = check_finite(header, allow_nonfinite=allow_nonfinite)
    alphas = formats.module_alphas(header, layout, config)
    ranks = {m.qualified: formats.module_rank(header, m) for m in layout.modules}
    metadata = {k: _decode(v) for k, v in header.metadata.items()}
    if config is not None:
        metadata["adapter_config"] = config
    metadata["loratui.derived"] = {
        "components": sorted({m.component or "model" for m in layout.modules}),
        "modules": len(layout.modules),
        "tensors": len(header.tensors),
        "ranks": sorted(set(ranks.values())),
        "alphas": sorted({a for a in alphas.values() if a is not None}),
        "extra_tensors": len(layout.extra),
    }
    unexplained = [key for key in layout.extra if not _saved_whole(key, config)]
    if unexplained:
        warnings.append(f"{len(unexplained)} tensor(s) are not LoRA pairs (e.g. '{unexplained[0]}')")
    return AdapterInfo(
        path=Path(path).expanduser().absolute(),
        weights=weights.absolute(),
        format=layout.format,
        family=formats.detect_family(header, layout, config),
        base_model=_base_model(metadata, config),
        rank=formats.most_common(ranks.values()),
        alpha=formats.most_common(alphas.values()),
        target_modules=formats.target_modules(layout, config),
        metadata=metadata,
        num_tensors=len(header.tensors),
        sha256=_sha256(files),
        size=sum(f.stat().st_size for f in files),
        files=[f.absolute() for f in files],
        trigger_words=_trigger_words(metadata),
        warnings=warnings,
    )


def _decode(value: str):
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def content_hash(path: Path | str) -> str:
    """The sha256 an adapter at `path` was registered under (its weights, then its config and companions)."""
    return _sha256(locate(path)[2])


def _sha256(files: list[Path]) -> str:
    """Of the weights, then the config and companions: a folder's identity is all of them."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _base_model(metadata: dict, config: dict | None) -> str | None:
    for value in (metadata.get("loratui.base_model"), (config or {}).get("base_model_name_or_path"),
                  metadata.get("ss_sd_model_name")):
        if isinstance(value, str) and value:
            return value
    return None


def _trigger_words(metadata: dict) -> list[str]:
    own = metadata.get("loratui.trigger_words")
    if isinstance(own, list):
        return [str(w) for w in own]
    phrase = metadata.get("modelspec.trigger_phrase") or own or ""
    return [w.strip() for w in str(phrase).split(",") if w.strip()]
