"""The Hub connection as the environment describes it: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE.

Read at call time (not import time) so the environment loratui runs in is the one honoured. The token is
only ever handed to huggingface_hub, which sends it to the endpoint; loratui never stores or shows it.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine import reach
from engine.errors import LoratuiError

_TOKEN_HINT = "set HF_TOKEN to a token that can read it (loratui never stores it)"


class HubUnavailable(LoratuiError):
    """The Hub cannot be asked right now (offline mode or no connection); local sources still work."""


@dataclass(frozen=True)
class Network:
    endpoint: str
    offline: bool
    has_token: bool

    @property
    def offline_banner(self) -> str:
        return "Offline (HF_HUB_OFFLINE): built-ins, HF cache and local folders only."

    @property
    def unreachable_banner(self) -> str:
        return f"No connection to {self.endpoint}: built-ins, HF cache and local folders only."


def state() -> Network:
    return Network(endpoint=reach.endpoint(), offline=reach.offline_mode(), has_token=bool(os.environ.get("HF_TOKEN")))


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads, worked out the way it does (HF_HUB_CACHE, HF_HOME, XDG)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    hf_home = os.environ.get("HF_HOME") or str(
        Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def api():
    """An HfApi on the configured endpoint; huggingface_hub finds the token itself (HF_TOKEN or its login)."""
    net = state()
    if net.offline:
        raise HubUnavailable(net.offline_banner, hint="unset HF_HUB_OFFLINE to search the Hub")
    from huggingface_hub import HfApi

    return HfApi(endpoint=net.endpoint, library_name="loratui")


def probe() -> str:
    """'' when the Hub answers, else the banner to show. The engine's probe, asked afresh: Browse probes again
    before retrying a search, and the commands' lookups in this process see the new answer."""
    net, hub = state(), reach.hub(fresh=True)
    if hub.reachable:
        return ""
    return net.offline_banner if hub.offline else net.unreachable_banner


@contextmanager
def hub_errors(repo_id: str = "", kind: str = "model") -> Iterator[None]:
    """Re-raise Hub and connection failures as a LoratuiError with a fix; anything else passes through."""
    try:
        yield
    except LoratuiError:
        raise
    except Exception as exc:
        # datasets wraps the Hub's errors (DatasetNotFoundError from GatedRepoError): look down the chain.
        chain = []
        cause: BaseException | None = exc
        while cause is not None and len(chain) < 8:
            chain.append(cause)
            cause = cause.__cause__
        for error in reversed(chain):
            known = _explain(error, repo_id, kind)
            if known is not None:
                raise known from exc
        raise


def _explain(exc: BaseException, repo_id: str, kind: str) -> LoratuiError | None:
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    net = state()
    if isinstance(exc, OfflineModeIsEnabled):
        return HubUnavailable(net.offline_banner, hint="unset HF_HUB_OFFLINE to reach the Hub")
    # datasets sometimes says "gated" only in the text of its DatasetNotFoundError.
    dataset_gated = type(exc).__name__ == "DatasetNotFoundError" and "gated" in str(exc)
    if isinstance(exc, GatedRepoError) or dataset_gated:
        page = f"{net.endpoint}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"
        if net.has_token:
            return LoratuiError(
                f"{kind} '{repo_id}' is gated and your token has no access to it yet",
                hint=f"accept its terms at {page}, then try again",
            )
        return LoratuiError(
            f"{kind} '{repo_id}' is gated: reading it needs a token",
            hint=f"accept its terms at {page} and {_TOKEN_HINT}",
        )
    if isinstance(exc, RevisionNotFoundError):
        return LoratuiError(f"{kind} '{repo_id}' has no such revision", hint="check the revision name")
    if isinstance(exc, RepositoryNotFoundError):
        if net.has_token:
            return LoratuiError(
                f"{kind} '{repo_id}' was not found, or your token cannot read it", hint="check the id"
            )
        return LoratuiError(
            f"{kind} '{repo_id}' was not found or is private", hint=f"check the id, or {_TOKEN_HINT}"
        )
    if type(exc).__name__ == "DatasetNotFoundError":
        return LoratuiError(
            f"{kind} '{repo_id}' was not found or cannot be read", hint=f"check the id, or {_TOKEN_HINT}"
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return LoratuiError(
            f"the Hub answered {status} for '{repo_id or net.endpoint}'", hint="try again later"
        )
    if isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        return HubUnavailable(
            net.unreachable_banner, hint="check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1"
        )
    return None


@contextmanager
def quiet() -> Iterator[None]:
    """No huggingface_hub progress bars: inside the dashboard they would scribble over the screen."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    yield
