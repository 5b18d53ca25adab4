"""Convert a LoRA between the diffusers and kohya layouts by renaming keys; tensor bytes are copied as-is. A PEFT
adapter (a folder) is exported as the folder stock PeftModel.from_pretrained loads, with its tokenizer.

Alpha travels as kohya `.alpha` tensors one way and diffusers' `lora_adapter_metadata` (the LoraConfig
that diffusers' loader builds the adapter from) the other, so a round trip gives back the same tensors.
"""

import json
import os
import shutil
import struct
from collections import Counter
from pathlib import Path

from engine.adapters import formats
from engine.adapters.inspect import locate
from engine.adapters.names import WEIGHT_NAMES
from engine.adapters.safeload import SafetensorsHeader, read_header, scalar_bytes, tensor_bytes
from engine.atomic import replace_folder, staged_folder
from engine.errors import LoratuiError

FORMATS = ("diffusers", "kohya", "peft")
_ALPHA_DTYPE_KEY = "loratui.kohya_alpha_dtype"  # so diffusers -> kohya restores the original alpha dtype
PEFT_WEIGHTS = WEIGHT_NAMES[0]


def convert(source: Path | str, dest: Path | str, fmt: str, *, overwrite: bool = False, name: str = "") -> Path:
    """Write `source` (any readable layout) to `dest` in `fmt`; returns the file written.

    `dest` ending in .safetensors is the file; anything else is a folder (created if need be) that receives
    the file a loader looks for: pytorch_lora_weights.safetensors (diffusers) or NAME.safetensors (kohya;
    `name`, or the source file's stem)."""
    if fmt not in FORMATS:
        raise LoratuiError(f"unknown export format '{fmt}'", f"choose one of: {', '.join(FORMATS)}")
    weights, config, files = locate(source)
    header = read_header(weights)
    if fmt == "peft":
        return _peft_folder(Path(dest), weights, config, files, overwrite)
    layout = formats.parse(header, config)
    family = formats.detect_family(header, layout, config)
    if layout.extra:
        raise LoratuiError(f"{weights.name} has {len(layout.extra)} tensors beyond LoRA pairs "
                           f"(e.g. '{layout.extra[0]}'), which {fmt} files cannot hold",
                           "DoRA and bias-trained adapters are imported and used as they are, not converted")
    if layout.format == "peft":
        if not _diffusion_family(family):
            raise LoratuiError(f"{weights.name} is a {family} adapter; the {fmt} layout holds diffusion LoRAs",
                               "export it with --format peft: a folder PeftModel.from_pretrained loads")
        layout.modules = [formats.LoraModule("unet", m.name, m.down, m.up, m.alpha) for m in layout.modules]
    alphas = formats.module_alphas(header, layout, config)
    metadata = {k: v for k, v in header.metadata.items() if k not in ("lora_adapter_metadata", _ALPHA_DTYPE_KEY)}
    if fmt == "diffusers":
        entries = _to_diffusers(header, layout, alphas, metadata)
    else:
        entries = _to_kohya(header, layout, alphas, _two_encoders(family))
    return write_safetensors(_destination(Path(dest), weights, fmt, name, overwrite), entries, metadata)


def _diffusion_family(family: str | None) -> bool:
    """A family whose adapters are diffusers LoRA files (None: unknown, judged by the keys)."""
    from engine.tasks import registry

    owner = registry.family_task(family)
    return family is None or (owner is not None and owner.adapters.format == "diffusers")


def _two_encoders(family: str | None) -> bool:
    """kohya numbers the text encoders (lora_te1_, lora_te2_) of a family that has two."""
    from engine.tasks import registry

    found = registry.family(family)
    return found is not None and len(found.text_encoders) > 1


def _peft_folder(dest: Path, weights: Path, config: dict | None, files: list[Path], overwrite: bool) -> Path:
    """The adapter's files under the names PEFT loads, written in a temporary sibling and renamed into place."""
    if config is None:
        raise LoratuiError(f"{weights.name} is a LoRA file, not a PEFT adapter",
                           "export it as diffusers or kohya; PEFT folders come from PEFT models")
    if dest.exists() and not dest.is_dir():
        raise LoratuiError(f"export target '{dest}' is a file, not a folder", "give a new or empty folder")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise LoratuiError(f"'{dest}' already exists and is not empty", "choose another --out, or pass --force")
    if dest.resolve() == weights.parent.resolve():
        raise LoratuiError(f"'{dest}' is the adapter's own folder", "export to another folder")
    try:
        with staged_folder(dest) as tmp:
            for file in files:
                shutil.copyfile(file, tmp / (PEFT_WEIGHTS if file == weights else file.name))
            os.chmod(tmp, 0o777 & ~_umask())
            replace_folder(tmp, dest)
    except OSError as exc:
        raise LoratuiError(f"cannot write into '{dest.parent}': {exc.strerror}",
                           "give a folder you can write to, on a disk with room") from None
    return dest / PEFT_WEIGHTS


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_diffusers(header: SafetensorsHeader, layout: formats.Layout, alphas: dict, metadata: dict) -> list:
    entries, configs = [], {}
    for module in layout.modules:
        # Without the `text_model.` level the name matches CLIP encoders saved either way (peft matches suffixes).
        name = module.name.removeprefix("text_model.") if module.component.startswith("text_encoder") else module.name
        entries.append(_copy(header, module.down, f"{module.component}.{name}.lora_A.weight"))
        entries.append(_copy(header, module.up, f"{module.component}.{name}.lora_B.weight"))
        rank = formats.module_rank(header, module)
        alpha = alphas[module.qualified]
        configs.setdefault(module.component, []).append((name, rank, rank if alpha is None else alpha))
    packed = {}
    for component, rows in configs.items():
        rank = Counter(r for _, r, _ in rows).most_common(1)[0][0]
        alpha = Counter(a for _, _, a in rows).most_common(1)[0][0]
        settings = {
            "r": rank, "lora_alpha": alpha, "target_modules": sorted(n for n, _, _ in rows),
            "rank_pattern": {n: r for n, r, _ in rows if r != rank},
            "alpha_pattern": {n: a for n, _, a in rows if a != alpha},
        }
        packed.update({f"{component}.{k}": v for k, v in settings.items()})
    metadata["lora_adapter_metadata"] = json.dumps(packed, sort_keys=True)
    alpha_dtypes = {header.tensors[m.alpha].dtype for m in layout.modules if m.alpha}
    if len(alpha_dtypes) == 1:
        metadata[_ALPHA_DTYPE_KEY] = alpha_dtypes.pop()
    return entries


def _to_kohya(header: SafetensorsHeader, layout: formats.Layout, alphas: dict, sdxl: bool) -> list:
    sdxl = sdxl or any(m.component == "text_encoder_2" for m in layout.modules)
    alpha_dtype = header.metadata.get(_ALPHA_DTYPE_KEY)
    entries = []
    for module in layout.modules:
        key = formats.kohya_key(module, sdxl)
        entries.append(_copy(header, module.down, f"{key}.lora_down.weight"))
        entries.append(_copy(header, module.up, f"{key}.lora_up.weight"))
        if module.alpha:
            entries.append(_copy(header, module.alpha, f"{key}.alpha"))
        else:
            alpha = alphas[module.qualified]
            value = float(formats.module_rank(header, module) if alpha is None else alpha)
            dtype = alpha_dtype or header.tensors[module.down].dtype
            entries.append((f"{key}.alpha", dtype, (), scalar_bytes(value, dtype)))
    return entries


def _copy(header: SafetensorsHeader, source_key: str, new_key: str) -> tuple:
    entry = header.tensors[source_key]
    return new_key, entry.dtype, entry.shape, tensor_bytes(header, source_key)


def _destination(dest: Path, source: Path, fmt: str, name: str, overwrite: bool) -> Path:
    if dest.is_dir() or dest.suffix != ".safetensors":
        if dest.exists() and not dest.is_dir():
            raise LoratuiError(f"export target '{dest}' is a file, not a folder",
                               "give a folder to write into, or a path ending in .safetensors")
        dest = dest / ("pytorch_lora_weights.safetensors" if fmt == "diffusers" else f"{name or source.stem}.safetensors")
    if dest.exists() and not overwrite:
        raise LoratuiError(f"'{dest}' already exists", "choose another --out, or pass --force to replace it")
    if dest.resolve() == source.resolve():
        raise LoratuiError(f"'{dest}' is the adapter's own file", "export to another path")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoratuiError(f"cannot create folder '{dest.parent}': {exc.strerror}",
                           "give a folder you can write to, or a path ending in .safetensors") from None
    return dest


def write_safetensors(dest: Path, entries: list[tuple], metadata: dict[str, str]) -> Path:
    """Write (key, dtype, shape, bytes) entries as a safetensors file, atomically (temp file + rename)."""
    keys = Counter(key for key, *_ in entries)
    clash = next((k for k, n in keys.items() if n > 1), None)
    if clash:
        raise LoratuiError(f"two modules map to the same key '{clash}'", "the adapter's module names are ambiguous")
    header, offset = {}, 0
    for key, dtype, shape, data in entries:
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data section 8-byte aligned, as safetensors does
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(struct.pack("<Q", len(raw)))
            handle.write(raw)
            for *_, data in entries:
                handle.write(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
