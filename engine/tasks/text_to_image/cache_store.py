"""Where the text-to-image caches live: tables of encoded entries, on disk and memory-mapped.

A table is a folder of .npy arrays, one entry per index of their first axis, and `table.json` naming the
entries' keys and the arrays' dtypes, written last: a folder without it is incomplete. A run's caches are
tables in its run folder, mapped read-only by every process on the machine, so memory holds one copy. The
store under LORATUI_HOME/cache/text-to-image keeps what every run encoded, as tables ("packs") keyed by
content, in one folder per model and augmentation, so a later run encodes only what it has never seen.
"""

import hashlib
import json
import os
import secrets
import shutil
import socket
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from engine.home import home

MARKER = "table.json"
COPY_CHUNK = 1024  # entries copied from a pack at a time: memory stays small whatever the cache's size


class TableWriter:
    """Fills the arrays of a table of `length` entries in place, in temporary files beside their final names;
    `commit` renames them in and writes the marker last."""

    def __init__(self, folder: Path, length: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.length = folder, length
        # Unique even between machines writing one shared folder.
        self.tag = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.arrays: dict[str, np.memmap] = {}
        self.dtypes: dict[str, str] = {}

    def put(self, positions: list[int], tensors: dict[str, torch.Tensor]) -> None:
        """Entries `positions` get the rows of `tensors`, in order."""
        for name, tensor in tensors.items():
            bits = _bits(tensor)
            if name not in self.arrays:
                self.arrays[name] = np.lib.format.open_memmap(self._tmp(name), mode="w+", dtype=bits.dtype,
                                                              shape=(self.length, *bits.shape[1:]))
                self.dtypes[name] = str(tensor.dtype).removeprefix("torch.")
            self.arrays[name][positions] = bits

    def commit(self, keys: list[str], namespace: str) -> None:
        (self.folder / MARKER).unlink(missing_ok=True)  # a reader never pairs old keys with new arrays
        for name, array in self.arrays.items():
            array.flush()
            os.replace(self._tmp(name), self.folder / f"{name}.npy")
        self.arrays.clear()
        tmp = self.folder / f".{MARKER}.{self.tag}.tmp"
        tmp.write_text(json.dumps({"namespace": namespace, "keys": keys, "dtypes": self.dtypes}))
        os.replace(tmp, self.folder / MARKER)

    def _tmp(self, name: str) -> Path:
        return self.folder / f".{name}.{self.tag}.tmp"


def holds(folder: Path, namespace: str, keys: list[str]) -> bool:
    """Whether `folder` holds a committed table of exactly these entries of this namespace (a resumed run's)."""
    try:
        meta = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("namespace") == namespace and meta.get("keys") == keys


def map_table(folder: Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    """A committed table's keys and arrays, the arrays memory-mapped read-only."""
    meta = json.loads((folder / MARKER).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns that a read-only array stays read-only
        tensors = {name: _from_bits(np.load(folder / f"{name}.npy", mmap_mode="r"), dtype)
                   for name, dtype in meta["dtypes"].items()}
    return meta["keys"], tensors


class Store:
    """Entries encoded by earlier runs, found by key, in one folder per model and augmentation (`namespace`)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.folder = home() / "cache" / "text-to-image" / namespace

    def lookup(self, keys: list[str]) -> dict[str, tuple[Path, int]]:
        """Where each of `keys` the store holds lies: (pack, index)."""
        wanted, found = set(keys), {}
        for pack in sorted(self.folder.glob("pack-*")):
            try:
                pack_keys = json.loads((pack / MARKER).read_text())["keys"]
            except (OSError, ValueError, KeyError):
                continue  # torn by a crash: its entries are encoded again
            for index, key in enumerate(pack_keys):
                if key in wanted:
                    found.setdefault(key, (pack, index))
        return found

    def copy(self, places: dict[int, tuple[Path, int]], writer: TableWriter) -> None:
        """Copy stored entries into `writer`: places maps a position of the writer to (pack, index)."""
        by_pack = defaultdict(list)
        for position, (pack, index) in places.items():
            by_pack[pack].append((position, index))
        for pack, pairs in by_pack.items():
            _, tensors = map_table(pack)
            for start in range(0, len(pairs), COPY_CHUNK):
                positions, indices = zip(*pairs[start:start + COPY_CHUNK], strict=True)
                writer.put(list(positions), {name: t[list(indices)] for name, t in tensors.items()})

    def new_pack(self, length: int) -> TableWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return TableWriter(self.folder / f".pack-{secrets.token_hex(8)}.tmp", length)

    def add(self, pack: TableWriter, keys: list[str]) -> None:
        """Commit a pack from `new_pack` and move it in whole, named by its keys."""
        pack.commit(keys, self.namespace)
        final = self.folder / f"pack-{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:24]}"
        try:
            pack.folder.rename(final)
        except OSError:  # the same entries, added by another machine sharing this home
            shutil.rmtree(pack.folder, ignore_errors=True)


def _bits(tensor: torch.Tensor) -> np.ndarray:
    """numpy has no bfloat16: its bits are kept as int16."""
    tensor = tensor.detach().cpu().contiguous()
    return (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _from_bits(array: np.ndarray, dtype: str) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor
