"""Adapters and base-model headers from the Hugging Face Hub, through huggingface_hub.

huggingface_hub itself honours HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE; nothing here reads or passes
the token, so it can never end up in what the library records. When engine.reach finds the Hub out of
reach, only the HF cache is read, as with HF_HUB_OFFLINE.
"""

import importlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from engine import reach
from engine.adapters.names import CONFIG_NAME, WEIGHT_NAMES
from engine.adapters.safeload import PICKLE_SUFFIXES, refuse_pickle, safe_relative
from engine.errors import HubUnreachable, LoratuiError, first_line

_REPO_ID = re.compile(r"^(hf://)?([\w.-]+/[\w.-]+)$")


def repo_id(ref: str) -> str | None:
    """`owner/name` (optionally `hf://owner/name`) of a Hub reference, or None if `ref` is not one."""
    match = _REPO_ID.match(ref)
    return match.group(2) if match and ".." not in ref else None


@contextmanager
def _hub_errors(repo: str, what: str = "") -> Iterator[None]:
    """huggingface_hub's exceptions as one-line LoratuiErrors."""
    from huggingface_hub import constants
    from huggingface_hub import errors as hf

    try:
        yield
    except hf.GatedRepoError as exc:
        raise LoratuiError(f"Hub repo '{repo}' is gated", "accept its terms on the Hub and set HF_TOKEN") from exc
    except hf.RepositoryNotFoundError as exc:
        raise LoratuiError(f"no Hub repo '{repo}' (or it is private)",
                           "check the id; for a private repo set HF_TOKEN") from exc
    except hf.RevisionNotFoundError as exc:
        raise LoratuiError(f"Hub repo '{repo}' has no such revision", "check --revision") from exc
    except hf.LocalEntryNotFoundError as exc:
        hub = reach.hub()
        if not hub.reachable:
            raise HubUnreachable(f"'{repo}{what}' is not in the local Hub cache and {hub.why_not}",
                                 f"{hub.hint}, or import a local file") from exc
        raise HubUnreachable(f"cannot reach the Hub at {constants.ENDPOINT} for '{repo}{what}'",
                             "check the network or HF_ENDPOINT; set HF_HUB_OFFLINE=1 to use the cache") from exc
    except hf.EntryNotFoundError as exc:
        raise LoratuiError(f"Hub repo '{repo}' has no file '{what.lstrip('/')}'",
                           "check --weight-name against the repo's files") from exc
    except hf.OfflineModeIsEnabled as exc:
        raise LoratuiError(f"listing '{repo}' needs the network but HF_HUB_OFFLINE is set",
                           "give --weight-name to use a cached file, or unset HF_HUB_OFFLINE") from exc
    except (hf.HfHubHTTPError, *_transport_errors()) as exc:
        raise LoratuiError(f"Hub request for '{repo}' failed: {first_line(exc, 160)}",
                           f"check the network, HF_ENDPOINT ({constants.ENDPOINT}) and HF_TOKEN") from exc


def _transport_errors() -> tuple[type[Exception], ...]:
    """Connection errors of whichever HTTP client this huggingface_hub version uses (httpx2, httpx)."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _list_files(repo: str, revision: str | None) -> list[str] | None:
    """The repo's files, or None when the Hub is out of reach (the cache is then searched for the usual names)."""
    from huggingface_hub import HfApi

    if not reach.hub().reachable:
        return None
    with _hub_errors(repo):
        return HfApi().list_repo_files(repo, revision=revision)


def _choose(repo: str, files: list[str]) -> str:
    """The weight file to fetch, refusing pickle-only repos."""
    for name in WEIGHT_NAMES:
        if name in files:
            return name
    tensors = [f for f in files if f.endswith(".safetensors")]
    if len(tensors) == 1:
        return tensors[0]
    if len(tensors) > 1:
        raise LoratuiError(f"Hub repo '{repo}' holds {len(tensors)} .safetensors files ({', '.join(tensors[:4])})",
                           "pick one with --weight-name FILE")
    pickles = [f for f in files if PurePosixPath(f).suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        refuse_pickle(Path(pickles[0]))
    raise LoratuiError(f"Hub repo '{repo}' holds no adapter weights", "check the id, or give --weight-name FILE")


def fetch_adapter(ref: str, *, weight_name: str | None = None, revision: str | None = None) -> tuple[Path, str]:
    """Download (or find in the cache) an adapter from the Hub: its local path and an `hf://` source.

    A PEFT adapter_model.safetensors comes with the adapter_config.json beside it, and the path is then
    the folder holding both.
    """
    repo = repo_id(ref)
    if repo is None:
        raise LoratuiError(f"'{ref}' is neither a local path nor a Hub id", "Hub ids look like owner/name")
    if weight_name:
        refuse_pickle(Path(safe_relative(weight_name)))
        names = [weight_name]
    else:
        files = _list_files(repo, revision)
        names = [_choose(repo, files)] if files is not None else list(WEIGHT_NAMES)
    weights = _download_first(repo, names, revision)
    name = next(n for n in names if PurePosixPath(n).name == weights.name)
    peft = weights.name == WEIGHT_NAMES[0] and _download_optional(
        repo, str(PurePosixPath(name).with_name(CONFIG_NAME)), revision)
    parts = weights.parts
    commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else (revision or "main")
    return (weights.parent if peft else weights), f"hf://{repo}/{name}@{commit}"


def _download_first(repo: str, names: list[str], revision: str | None) -> Path:
    """The first of `names` that downloads (or is cached, when the Hub is out of reach)."""
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    hub = reach.hub()
    for name in names:
        try:
            with _hub_errors(repo, f"/{name}"):
                return Path(hf_hub_download(repo, name, revision=revision, local_files_only=not hub.reachable))
        except LoratuiError as exc:
            offline_miss = isinstance(exc.__cause__, hf.LocalEntryNotFoundError) and len(names) > 1
            if not offline_miss:
                raise
    raise HubUnreachable(f"'{repo}' is not in the local Hub cache and {hub.why_not}",
                         f"{hub.hint}, or give --weight-name for a cached file")


def _download_optional(repo: str, name: str, revision: str | None) -> bool:
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(repo, name, revision=revision, local_files_only=not reach.hub().reachable)
    except (hf.EntryNotFoundError, hf.OfflineModeIsEnabled):  # a cache miss is an EntryNotFoundError too
        return False
    return True


def remote_shapes(ref: str, revision: str | None = None) -> dict[str, dict[str, tuple[int, ...]]]:
    """{file in repo: {tensor: shape}} for a Hub model's weights, from range-requested headers."""
    from huggingface_hub import HfApi

    repo = repo_id(ref) or ref
    files = _list_files(repo, revision)
    if files is None:
        hub = reach.hub()
        raise HubUnreachable(f"checking against Hub model '{repo}' needs the network but {hub.why_not}",
                             f"pass a local folder of the base model, or {hub.hint}")
    index = remote_json(repo, "model_index.json", revision)
    components = {k for k, v in (index or {}).items() if not k.startswith("_") and isinstance(v, list)}
    chosen = [f for f in files if f.endswith(".safetensors") and f.count(".") == 1
              and (f.rsplit("/", 1)[0] in components if index else "/" not in f)]
    api, shapes = HfApi(), {}
    for name in chosen:
        with _hub_errors(repo, f"/{name}"):
            parsed = api.parse_safetensors_file_metadata(repo, name, revision=revision)
        shapes[name] = {key: tuple(info.shape) for key, info in parsed.tensors.items()}
    return shapes


def remote_json(ref: str, filename: str, revision: str | None = None) -> dict | None:
    """A small JSON file of a Hub repo, or None if the repo has no such file or cannot be reached."""
    from huggingface_hub import errors as hf
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo_id(ref) or ref, filename, revision=revision,
                               local_files_only=not reach.hub().reachable)
        return json.loads(Path(path).read_text())
    except (hf.EntryNotFoundError, hf.HfHubHTTPError, hf.OfflineModeIsEnabled, OSError, json.JSONDecodeError):
        return None
