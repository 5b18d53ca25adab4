"""A model's detail panel, whatever its source: a built-in, a cache snapshot, a local folder or the Hub."""

from pathlib import Path

from loratui.browse import hub, local, trainable
from loratui.browse.entries import Entry, ModelDetail, Trainability

FILES_SHOWN = 200
# loratui task -> the Hub's pipeline tag, for sources that carry no tag of their own.
TASK_TAGS = {task: tag for tag, task in trainable.pipeline_tag_tasks().items()}


def describe(entry: Entry) -> ModelDetail:
    if entry.source == "hub":
        return hub.model_detail(entry.ref)
    if entry.source == "builtin":
        from engine import builtin
        from engine.home import builtin_cache

        row = next(r for r in builtin.describe() if f"builtin:{r['name']}" == entry.ref)
        folder = builtin_cache() / row["name"] if row["built"] else None
        detail = folder_detail(entry, folder, local.builtin_trainability(entry.ref))
        if folder is None:
            detail.tags.append("built on first use")
        return detail
    folder = local.cached_snapshot(entry.ref) if entry.source == "cache" else Path(entry.ref)
    if folder is None:
        return folder_detail(entry, None, Trainability(False, reason="no longer in the HF cache"))
    return folder_detail(entry, folder, trainable.from_folder(folder))


def folder_detail(entry: Entry, folder: Path | None, judged: Trainability) -> ModelDetail:
    files: list[tuple[str, int | None]] = []
    library = None
    if folder is not None and folder.is_dir():
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        files = [(p.relative_to(folder).as_posix(), p.stat().st_size) for p in paths[:FILES_SHOWN]]
        library = "diffusers" if (folder / "model_index.json").is_file() else "transformers"
    sizes = [size for _, size in files if size is not None]
    return ModelDetail(
        ref=entry.ref,
        source=entry.source,
        trainability=judged,
        pipeline_tag=TASK_TAGS.get(judged.task or ""),
        library=library,
        size_bytes=sum(sizes) if sizes else None,
        files=files,
    )
