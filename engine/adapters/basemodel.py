"""A base model's weight shapes and family, and whether an adapter fits it: headers and config files only.

A base is a built-in (builtin:NAME), a local folder (diffusers pipeline or transformers model), or a Hub
id; Hub headers are fetched with range requests, never the whole checkpoint.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from engine import model_kind
from engine.adapters import formats
from engine.adapters.hub import remote_json, remote_shapes
from engine.adapters.inspect import inspect_file
from engine.adapters.safeload import SafetensorsHeader, read_header
from engine.errors import LoratuiError
from engine.layer_names import loaded_name


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
        files = remote_shapes(ref)
    else:
        files = {str(p.relative_to(folder)): read_header(p).tensors for p in _weight_files(folder)}
        files = {name: {k: e.shape for k, e in tensors.items()} for name, tensors in files.items()}
    config = (remote_json(ref, "config.json") if folder is None else _json(folder / "config.json")) or {}
    model_type = config.get("model_type", "")  # adapters name modules as transformers loads them
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    for relpath, tensors in files.items():
        component = relpath.rsplit("/", 1)[0] if "/" in relpath else ""
        target = shapes.setdefault(component, {})
        for key, shape in tensors.items():
            if key.endswith(".weight"):
                name = key[: -len(".weight")]
                target[_normal(component, loaded_name(name, model_type) if not component else name)] = shape
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


def base_family(ref: str) -> str | None:
    """sd1/sd2/sdxl/llm/text for a base reference; None when unknown (e.g. an unreachable Hub)."""
    from engine import builtin

    if builtin.is_builtin(ref):
        return next((b["family"] for b in builtin.describe() if b["name"] == builtin.strip(ref)), None)
    folder = local_folder(ref)
    if folder is None:
        read = lambda name: remote_json(ref, name)  # noqa: E731
    else:
        read = lambda name: _json(folder / name)  # noqa: E731
    return model_kind.from_configs(read("model_index.json"), read("config.json"), read("unet/config.json")).family


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


@dataclass
class CheckReport:
    adapter: str
    base: str
    base_family: str | None
    adapter_family: str | None
    checked: int
    matched: int
    missing: list[str]      # adapter modules the base model does not have
    mismatched: list[str]   # modules whose shapes do not fit: "name: lora [in -> out], base [shape]"

    @property
    def fits(self) -> bool:
        families_agree = None in (self.base_family, self.adapter_family) or self.base_family == self.adapter_family
        return not self.missing and not self.mismatched and families_agree and self.matched > 0


def check_against_base(path: Path | str, base_ref: str) -> CheckReport:
    """Compare every LoRA module's shapes with the base model's weights, reading headers only."""
    info = inspect_file(path, allow_nonfinite=True)
    header = read_header(info.weights)
    config = info.metadata.get("adapter_config")
    layout = formats.parse(header, config)
    shapes = base_shapes(base_ref)
    missing, mismatched = [], []
    for module in layout.modules:
        component = module.component or _best_component(layout, shapes)
        base = _find(shapes.get(component, {}), _normal(component, module.name))
        if base is None:
            missing.append(module.qualified)
            continue
        problem = _shape_problem(header, module, base)
        if problem:
            mismatched.append(f"{module.qualified}: {problem}")
    checked = len(layout.modules)
    return CheckReport(str(path), base_ref, base_family(base_ref), info.family, checked,
                       checked - len(missing) - len(mismatched), missing, mismatched)


def _normal(component: str, name: str) -> str:
    # CLIP text encoders are saved with and without the `text_model.` level, depending on the version.
    return name.removeprefix("text_model.") if component.startswith("text_encoder") else name


def _find(table: dict, name: str):
    """The base weight of module `name`; a task's model wraps the base model under a name of its own
    (bert., segformer.), so one leading part of either name may be missing from the other."""
    if name in table:
        return table[name]
    inner = name.split(".", 1)[-1]
    if inner in table:
        return table[inner]
    return next((shape for key, shape in table.items() if key.split(".", 1)[-1] == name), None)


def _best_component(layout: formats.Layout, shapes: dict[str, dict]) -> str:
    names = [m.name for m in layout.modules if not m.component]
    return max(shapes, key=lambda c: sum(_find(shapes[c], _normal(c, n)) is not None for n in names), default="")


def _shape_problem(header: SafetensorsHeader, module: formats.LoraModule, base: tuple[int, ...]) -> str | None:
    down, up = header.tensors[module.down].shape, header.tensors[module.up].shape
    fits = len(base) == len(down) and down[1] == base[1] and up[0] == base[0] and down[2:] == base[2:]
    return None if fits else f"lora {list(down)} x {list(up)}, base weight {list(base)}"
