"""A base model's weight shapes and family, read from safetensors headers and config files only.

A base is a built-in (builtin:NAME), a local folder (diffusers pipeline or transformers model), or a Hub
id; Hub headers are fetched with range requests, never the whole checkpoint.
"""

import json
from pathlib import Path

from engine.adapters.safeload import read_header
from engine.errors import LoratuiError


def local_folder(ref: str) -> Path | None:
    """The folder a base reference points at on this machine, or None for a Hub id."""
    from engine import builtin

    if builtin.is_builtin(ref):
        return builtin.path(ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise LoratuiError(f"base model '{ref}' is not a model folder",
                           "give a diffusers/transformers folder, builtin:NAME or a Hub id like owner/name")
    return None


def base_shapes(ref: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """component ("" for a single model) -> {module name: weight shape}, text_model. levels dropped."""
    folder = local_folder(ref)
    if folder is None:
        from engine.adapters.hub import remote_shapes

        files = remote_shapes(ref)
    else:
        files = {str(p.relative_to(folder)): read_header(p).tensors for p in _weight_files(folder)}
        files = {name: {k: e.shape for k, e in tensors.items()} for name, tensors in files.items()}
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    for relpath, tensors in files.items():
        component = relpath.rsplit("/", 1)[0] if "/" in relpath else ""
        target = shapes.setdefault(component, {})
        for key, shape in tensors.items():
            if key.endswith(".weight"):
                name = key[: -len(".weight")]
                target[name.removeprefix("text_model.") if component.startswith("text_encoder") else name] = shape
    if not shapes:
        raise LoratuiError(f"base model '{ref}' has no .safetensors weights to compare with",
                           "point at a folder saved with safe_serialization (the default)")
    return shapes


def _weight_files(folder: Path) -> list[Path]:
    """Every weight file of a pipeline's components, or of a single model; variants (fp16...) skipped."""
    index = folder / "model_index.json"
    dirs = [folder / name for name in _components(index)] if index.is_file() else [folder]
    found = []
    for sub in dirs:
        files = sorted(sub.glob("*.safetensors"))
        plain = [f for f in files if f.name.count(".") == 1 or "-of-" in f.name]
        found.extend(plain or files)
    return found


def _components(index: Path) -> list[str]:
    return [k for k, v in json.loads(index.read_text()).items() if not k.startswith("_") and isinstance(v, list)]


def family_from_configs(model_index: dict | None, config: dict | None, unet_config: dict | None) -> str | None:
    if model_index:
        name = model_index.get("_class_name", "")
        if "XL" in name:
            return "sdxl"
        if name.startswith("StableDiffusion"):
            return "sd2" if (unet_config or {}).get("cross_attention_dim") == 1024 else "sd1"
        return None
    archs = (config or {}).get("architectures") or []
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in archs):
        return "llm"
    return "text" if archs else None


def base_family(ref: str) -> str | None:
    """sd1/sd2/sdxl/llm/text for a base reference; None when unknown (e.g. an unreachable Hub)."""
    from engine import builtin

    if builtin.is_builtin(ref):
        return next((b["family"] for b in builtin.describe() if b["name"] == builtin.strip(ref)), None)
    folder = local_folder(ref)
    if folder is None:
        from engine.adapters.hub import remote_json

        read = lambda name: remote_json(ref, name)  # noqa: E731
    else:
        read = lambda name: _json(folder / name)  # noqa: E731
    return family_from_configs(read("model_index.json"), read("config.json"), read("unet/config.json"))


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def layers_per_block(ref: str | None) -> int:
    """The UNet's layers_per_block, needed to map SGM block names; 2 (SD/SDXL) when unknown."""
    if ref:
        try:
            folder = local_folder(ref)
        except LoratuiError:
            folder = None
        config = _json(folder / "unet" / "config.json") if folder else None
        if config and isinstance(config.get("layers_per_block"), int):
            return config["layers_per_block"]
    return 2
