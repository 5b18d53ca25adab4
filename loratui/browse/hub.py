"""Search the Hub for models and datasets, and read one repo's details, through huggingface_hub's HfApi."""

import json
import re

from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.browse import trainable
from loratui.browse.entries import Entry, ModelDetail, Trainability
from loratui.browse.network import api, hub_errors, quiet, state

LIBRARIES = ("diffusers", "transformers")
TASKS = tuple(registry.hub_tag_tasks())  # the Hub's pipeline tags of the models loratui trains
# What Browse offers -> HfApi's sort key.
SORTS = {"downloads": "downloads", "likes": "likes", "recently updated": "last_modified"}
LIMIT = 50


def looks_like_repo_id(text: str) -> bool:
    return re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None


def search_models(
    query: str = "",
    library: str | None = None,
    task: str | None = None,
    sort: str = "downloads",
    limit: int = LIMIT,
) -> list[Entry]:
    with hub_errors():
        found = api().list_models(
            search=query or None,
            filter=library or None,
            pipeline_tag=task or None,
            sort=SORTS[sort],
            limit=limit,
        )
        return [
            Entry(
                "model",
                "hub",
                m.id,
                m.id,
                _model_summary(m.library_name, m.pipeline_tag),
                m.pipeline_tag,
                m.downloads,
                m.likes,
            )
            for m in found
        ]


def search_datasets(
    query: str = "", task: str | None = None, sort: str = "downloads", limit: int = LIMIT
) -> list[Entry]:
    with hub_errors(kind="dataset"):
        found = api().list_datasets(
            search=query or None, task_categories=task or None, sort=SORTS[sort], limit=limit
        )
        return [
            Entry("dataset", "hub", d.id, d.id, _dataset_summary(d.tags or []), task, d.downloads, d.likes)
            for d in found
        ]


def model_detail(repo_id: str, revision: str | None = None) -> ModelDetail:
    """Everything the detail panel shows, plus whether loratui can train it (from its config files)."""
    with hub_errors(repo_id):
        info = api().model_info(repo_id, revision=revision, files_metadata=True)
    files = [(s.rfilename, s.size) for s in info.siblings or []]
    sizes = [size for _, size in files if size is not None]
    return ModelDetail(
        ref=repo_id,
        source="hub",
        trainability=_judge_hub_model(repo_id, revision, {name for name, _ in files}, info.config),
        pipeline_tag=info.pipeline_tag,
        library=info.library_name,
        size_bytes=sum(sizes) if sizes else None,
        downloads=info.downloads,
        likes=info.likes,
        tags=list(info.tags or []),
        gated=info.gated or False,
        private=bool(info.private),
        files=files,
    )


def dataset_card(repo_id: str) -> dict:
    """The Hub's own facts about a dataset repo: counts, tags, gating and files."""
    with hub_errors(repo_id, "dataset"):
        info = api().dataset_info(repo_id)
    files = [s.rfilename for s in info.siblings or []]
    return {
        "card": _card_text(repo_id) if "README.md" in files else "",
        "downloads": info.downloads,
        "likes": info.likes,
        "tags": list(info.tags or []),
        "gated": info.gated or False,
        "private": bool(info.private),
        "files": files,
    }


def fetch_json(repo_id: str, filename: str, revision: str | None = None, repo_type: str = "model") -> dict:
    """A small JSON file of a repo, through the HF cache (training downloads the same file anyway)."""
    from huggingface_hub import hf_hub_download

    with quiet(), hub_errors(repo_id, repo_type):
        path = hf_hub_download(
            repo_id, filename, revision=revision, repo_type=repo_type, endpoint=state().endpoint
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _card_text(repo_id: str) -> str:
    """The dataset card's prose, without its YAML header."""
    from huggingface_hub import hf_hub_download

    try:
        with quiet(), hub_errors(repo_id, "dataset"):
            path = hf_hub_download(repo_id, "README.md", repo_type="dataset", endpoint=state().endpoint)
    except LoratuiError as exc:
        return f"(the card cannot be read: {exc.message})"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.startswith("---"):
        text = text.split("---", 2)[-1]
    return text.strip()


def _judge_hub_model(
    repo_id: str, revision: str | None, files: set[str], config: dict | None
) -> Trainability:
    """From the repo's config files; a gated or unreachable file leaves the verdict open, saying why."""
    try:
        return _judge_from_files(repo_id, revision, files, config)
    except LoratuiError as exc:
        return Trainability(False, reason=f"cannot read its config: {exc.message} ({exc.hint})")


def _judge_from_files(
    repo_id: str, revision: str | None, files: set[str], config: dict | None
) -> Trainability:
    if "model_index.json" in files:
        index = fetch_json(repo_id, "model_index.json", revision)
        unet = fetch_json(repo_id, "unet/config.json", revision) if "unet/config.json" in files else None
        return trainable.from_model_index(index, unet)
    if "config.json" in files:
        return trainable.from_config(fetch_json(repo_id, "config.json", revision))
    if config:
        return trainable.from_config(config)
    return Trainability(False, reason="the repo has no model_index.json or config.json")


def _model_summary(library: str | None, pipeline_tag: str | None) -> str:
    return " · ".join(x for x in (library, pipeline_tag) if x)


def _dataset_summary(tags: list[str]) -> str:
    keep = [t.split(":", 1)[1] for t in tags if t.startswith(("task_categories:", "modality:", "format:"))]
    return " · ".join(keep[:4])
