"""What a dataset holds, read through datasets' load_dataset_builder, plus its first rows.

Local imagefolder and csv builders leave features and splits empty until the data is prepared; those gaps
are filled from a quick prepare of small local data, or from the first rows, and the notes say which.
"""

import tempfile
from pathlib import Path

from loratui.browse import local
from loratui.browse.entries import DatasetDetail
from loratui.browse.network import hub_errors, quiet

PREVIEW_ROWS = 8
PREPARE_LIMIT_BYTES = 64 * 2**20  # local data up to this size is prepared to count its rows


def locate(ref: str) -> tuple[str, dict, list[Path]]:
    """(source, load_dataset_builder arguments, local data paths) for a built-in, a local path or a Hub id."""
    from engine import builtin

    if builtin.is_builtin(ref):
        path = builtin.path(ref)
        return "builtin", _local_args(path), [path]
    path = Path(ref).expanduser()
    if path.exists():
        if local.data_format(path) is None:
            from engine.errors import LoratuiError

            raise LoratuiError(
                f"'{ref}' holds no data loratui can read",
                hint="use an imagefolder, or csv, json/jsonl, parquet or text files",
            )
        return "local", _local_args(path.resolve()), [path.resolve()]
    return "hub", {"path": ref}, []


def configs(ref: str) -> list[str]:
    from datasets import get_dataset_config_names

    source, args, _ = locate(ref)
    with quiet(), hub_errors(ref, "dataset"):
        return list(
            get_dataset_config_names(
                args["path"], data_files=args.get("data_files"), data_dir=args.get("data_dir")
            )
        )


def describe(ref: str, config: str | None = None, rows: int = PREVIEW_ROWS) -> DatasetDetail:
    import datasets
    from datasets import load_dataset_builder

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    source, args, paths = locate(ref)
    detail = DatasetDetail(ref=ref, source=source, config=config)
    with quiet(), hub_errors(ref, "dataset"), tempfile.TemporaryDirectory(prefix="loratui-browse-") as tmp:
        detail.configs = configs(ref)
        if not config and len(detail.configs) > 1 and "default" not in detail.configs:
            config = detail.configs[0]  # the builder refuses to guess among several
        builder = load_dataset_builder(**args, name=config or None, cache_dir=tmp)
        info = builder.info
        detail.config = builder.config.name
        detail.description = (info.description or "").strip()
        features = info.features
        splits = _counts(info.splits)
        split = next(iter(splits)) if splits else _first_split(builder)
        detail.rows = list(builder.as_streaming_dataset(split=split).take(rows)) if split else []
        detail.size_bytes = _local_size(paths) if paths else (info.dataset_size or info.download_size)
        if (features is None or splits is None) and paths and detail.size_bytes <= PREPARE_LIMIT_BYTES:
            builder.download_and_prepare(output_dir=str(Path(tmp) / "prepared"))
            filled = " and ".join(
                w for w, gap in (("features", features is None), ("row counts", splits is None)) if gap
            )
            features, splits = features or builder.info.features, splits or _counts(builder.info.splits)
            detail.notes.append(f"{filled} from a quick prepare of the local files")
        if features is None and detail.rows:
            features = _infer_features(detail.rows)
            detail.notes.append(f"features inferred from the first {len(detail.rows)} rows")
        if splits is None:
            splits = dict.fromkeys(builder.config.data_files or ([split] if split else []))
            detail.notes.append("row counts unknown until the data is prepared")
        detail.splits = {str(name): count for name, count in splits.items()}
    detail.features = {name: type_name(f) for name, f in features.items()} if features else None
    detail.image_columns = [name for name, kind in (detail.features or {}).items() if kind == "image"]
    return detail


def type_name(feature) -> str:
    """A short, readable type: string, int64, image, class label (3), list of string, ..."""
    from datasets import ClassLabel, Image, LargeList, List, Value

    if isinstance(feature, Image):
        return "image"
    if isinstance(feature, ClassLabel):
        return f"class label ({feature.num_classes})"
    if isinstance(feature, Value):
        return "string" if feature.dtype in ("string", "large_string") else feature.dtype
    if isinstance(feature, List | LargeList):
        return f"list of {type_name(feature.feature)}"
    if isinstance(feature, dict):
        return "struct"
    return type(feature).__name__


def _local_args(path: Path) -> dict:
    fmt = local.data_format(path)
    if path.is_dir():
        return {"path": str(path)}
    return {"path": fmt, "data_files": str(path)}


def _counts(splits) -> dict[str, int | None] | None:
    return {name: s.num_examples for name, s in splits.items()} if splits else None


def _first_split(builder) -> str | None:
    files = builder.config.data_files
    return str(next(iter(files))) if files else None


def _infer_features(rows: list[dict]):
    import pyarrow as pa
    from datasets import Features

    return Features.from_arrow_schema(pa.Table.from_pylist(rows).schema)


def _local_size(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(f.stat().st_size for f in files if not f.name.startswith("."))
    return total
