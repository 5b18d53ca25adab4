"""Sources that need no network: the built-ins, the local HF cache, and local folders and files."""

import json
import os
from pathlib import Path

from loratui.browse import trainable
from loratui.browse.entries import Entry, Trainability, human_size
from loratui.browse.network import hub_cache_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
# Data file suffix -> the datasets packaged builder that reads it.
DATA_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
# Folders that hold build or tool output, never a dataset someone means to train on.
SKIPPED_FOLDERS = ("__pycache__", "node_modules", "site-packages")
SETTINGS_KEY = "browse.paths"
_SCAN_LIMIT = 500  # entries looked at per folder, so a huge folder cannot stall the list


def looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "./", "../"))


def builtin_entries(kind: str) -> list[Entry]:
    from engine import builtin

    return [
        Entry(
            kind, "builtin", f"builtin:{row['name']}", f"builtin:{row['name']}", row["summary"], row["task"]
        )
        for row in builtin.describe()
        if row["kind"] == kind
    ]


def builtin_trainability(ref: str) -> Trainability:
    """A built-in says its own task and family; no need to build it to judge it."""
    from engine import builtin

    row = next(r for r in builtin.describe() if f"builtin:{r['name']}" == ref)
    reason = f"built-in {row['family']} model"
    if row["task"] not in trainable.supported_tasks():
        return Trainability(False, row["task"], row["family"], f"{reason}: its task is not supported yet")
    return Trainability(True, row["task"], row["family"], reason)


def cache_entries(kind: str) -> list[Entry]:
    """Repos in the local HF cache (scan_cache_dir), newest first."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hub_cache_dir())
    except CacheNotFound:
        return []
    repos = sorted(
        (r for r in info.repos if r.repo_type == kind), key=lambda r: r.last_modified, reverse=True
    )
    return [
        Entry(
            kind, "cache", r.repo_id, r.repo_id, f"cached, {human_size(r.size_on_disk)}, {r.nb_files} files"
        )
        for r in repos
    ]


def cached_snapshot(repo_id: str, kind: str = "model") -> Path | None:
    """The cached snapshot of repo_id (the one `main` points to, else the newest), if any."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hub_cache_dir())
    except CacheNotFound:
        return None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == kind and repo.revisions:
            revisions = sorted(
                repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified), reverse=True
            )
            return revisions[0].snapshot_path
    return None


def model_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model_index.json").is_file() or (path / "config.json").is_file())


def data_format(path: Path) -> str | None:
    """The datasets builder that reads a local file or folder (imagefolder, csv, json, parquet, text)."""
    if path.is_file():
        return DATA_FORMATS.get(path.suffix.lower())
    if not path.is_dir() or path.name in SKIPPED_FOLDERS or path.name.endswith(".egg-info"):
        return None
    suffixes = _suffixes(path, depth=2)
    if suffixes & IMAGE_SUFFIXES:
        return "imagefolder"
    # A folder of .txt files is more often notes than data: only a .txt file itself counts as text data.
    for suffix, name in DATA_FORMATS.items():
        if suffix in suffixes and name != "text":
            return name
    return None


def classify(path: Path) -> Entry | None:
    """A local model folder or dataset as a Browse entry; None when it is neither."""
    path = path.expanduser().resolve()
    if model_folder(path):
        judged = trainable.from_folder(path)
        summary = f"{judged.task or 'not trainable'}: {judged.reason}"
        return Entry("model", "local", str(path), path.name, summary, judged.task)
    fmt = data_format(path)
    if fmt is None:
        return None
    return Entry(
        "dataset", "local", str(path), path.name, f"{fmt} {'folder' if path.is_dir() else 'file'}", None
    )


def local_entries(kind: str, paths: list[Path], scan: list[Path]) -> list[Entry]:
    """Models or datasets among `paths` themselves and the children of the `scan` folders."""
    candidates = [p.expanduser() for p in paths]
    for folder in scan:
        candidates += _children(folder.expanduser())
    found: dict[str, Entry] = {}
    for candidate in candidates:
        entry = classify(candidate)
        if entry is not None and entry.kind == kind:
            found.setdefault(entry.ref, entry)
    return list(found.values())


def remembered_paths(db) -> list[Path]:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [SETTINGS_KEY]).fetchone()
    return [Path(p) for p in json.loads(row[0])] if row else []


def remember_path(db, path: Path) -> None:
    """Keep a typed path in the library's settings, so Browse lists it next time."""
    from loratui.settings import write_setting

    paths = [str(p) for p in remembered_paths(db)]
    resolved = str(path.expanduser().resolve())
    if resolved not in paths:
        write_setting(db, SETTINGS_KEY, json.dumps([*paths, resolved]))


def _children(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            names = [
                e.path for _, e in zip(range(_SCAN_LIMIT), it, strict=False) if not e.name.startswith(".")
            ]
    except OSError:
        return []
    return [Path(p) for p in sorted(names)]


def _suffixes(folder: Path, depth: int) -> set[str]:
    found: set[str] = set()
    for child in _children(folder):
        if child.is_file():
            found.add(child.suffix.lower())
        elif depth > 1 and child.is_dir():
            found |= _suffixes(child, depth - 1)
    return found
