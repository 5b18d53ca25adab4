"""Open safetensors files from untrusted sources without trusting them.

Everything here refuses with a one-line LoratuiError before anything is written anywhere:
pickle formats (never unpickled), truncated or corrupt files, absurd headers, non-finite tensors
(unless the caller asks to keep them, flagged), and names that would escape the library folder.
Header parsing and the finiteness scan use the standard library and numpy only, so inspecting
an adapter does not import torch.
"""

import json
import math
import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import LoratuiError

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}
# The same ceiling the safetensors library applies; a LoRA header is a few hundred KB at most.
MAX_HEADER_BYTES = 100_000_000
# Bytes per element, and the exponent mask that marks inf/nan for the float types.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_NONFINITE_MASKS = {
    "F64": ("<u8", 0x7FF0000000000000), "F32": ("<u4", 0x7F800000), "F16": ("<u2", 0x7C00),
    "BF16": ("<u2", 0x7F80), "F8_E5M2": ("u1", 0x7C), "F8_E4M3": ("u1", 0x7F),
}
_SCAN_CHUNK = 1 << 24
_PICKLE_HINT = (
    "loratui never unpickles files; convert it to .safetensors on a machine you trust "
    "(load it, then safetensors.torch.save_file) or download the repo's safetensors export"
)
_NAME = re.compile(r"^[\w][\w.+@-]{0,127}$")


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets into the data section, which starts after the 8-byte length and the header
    end: int


@dataclass
class SafetensorsHeader:
    path: Path
    size: int
    data_start: int
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str] = field(default_factory=dict)


def refuse_pickle(path: Path) -> None:
    """Refuse pickle-based weights by suffix before any byte is read."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise LoratuiError(f"refusing {path.name}: {path.suffix} files are pickles that can run code", _PICKLE_HINT)


def read_header(path: Path | str) -> SafetensorsHeader:
    """Parse and validate a safetensors header: every tensor inside the file, no gaps, no overlaps."""
    path = Path(path)
    refuse_pickle(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise _not_safetensors(path, f"only {size} bytes, too short for a header", head)
            start = head + handle.read(16)
            if start[8:9] != b"{":  # the format requires the JSON header to begin with "{": this is another format
                raise _not_safetensors(path, _looks_like(start), head)
            handle.seek(8)
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                raise _corrupt(path, f"header claims {length} bytes (limit {MAX_HEADER_BYTES})", head)
            if length > size - 8:
                raise _corrupt(path, f"header claims {length} bytes but the file has {size - 8} after the length",
                               head)
            raw = handle.read(length)
    except OSError as exc:
        raise LoratuiError(f"cannot read {path}: {exc.strerror}", "check the path and its permissions") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"header is not valid JSON ({exc.__class__.__name__})", head) from None
    if not isinstance(header, dict):
        raise _corrupt(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "__metadata__ must map strings to strings")
    tensors = {name: _entry(path, name, info) for name, info in header.items()}
    _check_layout(path, tensors, size - 8 - length)
    return SafetensorsHeader(path, size, 8 + length, tensors, dict(metadata))


def _entry(path: Path, name: str, info) -> TensorEntry:
    try:
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        ok = (dtype in DTYPE_SIZES and all(isinstance(d, int) and d >= 0 for d in shape)
              and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end)
    except (TypeError, KeyError, ValueError):
        ok = False
    if not ok:
        raise _corrupt(path, f"tensor '{name}' has a malformed entry")
    if end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise _corrupt(path, f"tensor '{name}' claims {end - begin} bytes for shape {list(shape)} {dtype}")
    return TensorEntry(dtype, tuple(shape), begin, end)


def _check_layout(path: Path, tensors: dict[str, TensorEntry], data_size: int) -> None:
    position = 0
    for name, entry in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin != position:
            raise _corrupt(path, f"tensor '{name}' overlaps another or leaves a gap")
        position = entry.end
    if position > data_size:
        raise _corrupt(path, f"truncated: tensors need {position} bytes of data, the file has {data_size}")
    if position < data_size:
        raise _corrupt(path, f"{data_size - position} stray bytes after the last tensor")


def _corrupt(path: Path, why: str, head: bytes = b"") -> LoratuiError:
    return _pickled(path, head) or LoratuiError(
        f"{path.name} is not a valid safetensors file: {why}",
        "re-download or re-export the file; a partial download is the usual cause")


def _not_safetensors(path: Path, why: str, head: bytes) -> LoratuiError:
    return _pickled(path, head) or LoratuiError(
        f"'{path.name}' is not a safetensors file ({why})",
        "import a LoRA's .safetensors weights; a web page or another format saved under this name is the usual cause")


def _pickled(path: Path, head: bytes) -> LoratuiError | None:
    # Only once the bytes fail as safetensors: a valid header length may start with 0x80 too.
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":
        return LoratuiError(f"refusing {path.name}: it is a pickle (torch.save) file, not safetensors", _PICKLE_HINT)
    return None


def _looks_like(start: bytes) -> str:
    text = start.decode("utf-8", errors="replace").rstrip("\ufffd")  # the cut may split a character
    if "\ufffd" in text or not all(c.isprintable() or c.isspace() for c in text):
        return "it holds other binary data"
    return f"it is text: {text.strip()!r}..."


def tensor_bytes(header: SafetensorsHeader, name: str) -> bytes:
    entry = header.tensors[name]
    with header.path.open("rb") as handle:
        handle.seek(header.data_start + entry.begin)
        return handle.read(entry.end - entry.begin)


def read_scalar(header: SafetensorsHeader, name: str) -> float:
    """The value of a one-element float tensor, such as a kohya `.alpha`."""
    entry = header.tensors[name]
    raw = tensor_bytes(header, name)
    if math.prod(entry.shape) != 1:
        raise _corrupt(header.path, f"'{name}' should hold one number, it has shape {list(entry.shape)}")
    if entry.dtype == "BF16":
        return struct.unpack("<f", b"\x00\x00" + raw)[0]
    codes = {"F16": "<e", "F32": "<f", "F64": "<d", "I64": "<q", "I32": "<i"}
    if entry.dtype not in codes:
        raise _corrupt(header.path, f"'{name}' has dtype {entry.dtype}, expected a float")
    return float(struct.unpack(codes[entry.dtype], raw)[0])


def scalar_bytes(value: float, dtype: str) -> bytes:
    """`value` encoded as one element of `dtype` (bf16 rounded to nearest even)."""
    if dtype == "BF16":
        bits = struct.unpack("<I", struct.pack("<f", value))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return struct.pack("<H", bits)
    return struct.pack({"F16": "<e", "F64": "<d"}.get(dtype, "<f"), value)


def nonfinite_tensors(header: SafetensorsHeader) -> list[str]:
    """Names of float tensors holding inf or nan, found by their exponent bits without converting."""
    import numpy as np

    found = []
    if not header.tensors:
        return found
    with header.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        for name, entry in header.tensors.items():
            if entry.dtype not in _NONFINITE_MASKS or entry.end == entry.begin:
                continue
            np_dtype, mask = _NONFINITE_MASKS[entry.dtype]
            width = DTYPE_SIZES[entry.dtype]
            start, stop = header.data_start + entry.begin, header.data_start + entry.end
            for offset in range(start, stop, _SCAN_CHUNK):
                count = (min(stop, offset + _SCAN_CHUNK) - offset) // width
                bits = np.frombuffer(view, dtype=np_dtype, count=count, offset=offset)
                bad = bool(np.any((bits & mask) == mask))
                del bits  # release the buffer export before the mmap closes
                if bad:
                    found.append(name)
                    break
    return found


def check_finite(header: SafetensorsHeader, *, allow_nonfinite: bool = False) -> list[str]:
    """Refuse non-finite tensors, or return them as warnings when the caller keeps them."""
    bad = nonfinite_tensors(header)
    if bad and not allow_nonfinite:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise LoratuiError(f"{header.path.name} has non-finite values (inf/nan) in '{bad[0]}'{more}",
                           "the adapter is broken (often a diverged run); import it flagged with --allow-nonfinite")
    return [f"non-finite values in {len(bad)} tensor(s): {', '.join(bad[:5])}"] if bad else []


def safe_name(name: str, what: str = "adapter name") -> str:
    """A name that can be a single folder under the library: no separators, no dot-dot, no control chars."""
    if not _NAME.match(name) or ".." in name:
        raise LoratuiError(
            f"{what} '{name}' is not allowed: it could escape the library folder or is not a plain name",
            "use letters, digits and - _ . + @ (up to 128 characters), not starting with a dot or dash",
        )
    return name


def inside(root: Path, candidate: Path) -> Path:
    """`candidate` resolved, refused unless it stays under `root` (symlinks followed)."""
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise LoratuiError(f"'{candidate}' would land outside the library folder {root}",
                           "pick a plain file name without '..' or an absolute path")
    return resolved


def safe_relative(path_in_repo: str) -> str:
    """A repo-relative file name that cannot climb out of the folder it is placed in."""
    parts = path_in_repo.replace("\\", "/").split("/")
    if path_in_repo.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise LoratuiError(f"file name '{path_in_repo}' is not allowed: it could escape the library folder",
                           "give the file's path inside the repo, e.g. pytorch_lora_weights.safetensors")
    return path_in_repo
