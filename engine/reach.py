"""Can the Hub be reached? One short probe decides, once per command.

huggingface_hub retries a connection that fails, with backoff and a warning per try: about 47 s for a host
that does not resolve. Asking once, for a few seconds and without retries, turns that into one note per
lookup skipped. With HF_HUB_OFFLINE set nothing is asked. Either way the HF cache is still read.
"""

import os
import threading
from dataclasses import dataclass

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Hub:
    endpoint: str
    offline: bool     # HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE): the user asked for no network
    reachable: bool   # the probe had an answer; False when offline, since nothing was asked

    @property
    def why_not(self) -> str:
        """Why lookups read the cache only, for messages: 'X is not cached and <why_not>'."""
        return "HF_HUB_OFFLINE is set" if self.offline else f"the Hub could not be reached at {self.endpoint}"

    @property
    def hint(self) -> str:
        if self.offline:
            return "unset HF_HUB_OFFLINE to use the network"
        return "check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the HF cache alone"


_decided: dict[tuple[str, bool], Hub] = {}


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_mode() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub(*, fresh: bool = False) -> Hub:
    """The Hub as the environment names it, probed once per process (again with fresh=True: Browse's retry)."""
    key = (endpoint(), offline_mode())
    if fresh or key not in _decided:
        _decided[key] = Hub(*key, reachable=not key[1] and probe(key[0]))
    return _decided[key]


def offline_env() -> dict[str, str]:
    """HF_HUB_OFFLINE=1 for child processes when this one already found the Hub out of reach (nothing is
    probed here): a training process then reads the HF cache at once instead of retrying for ~47 s."""
    found = _decided.get((endpoint(), offline_mode()))
    return {"HF_HUB_OFFLINE": "1"} if found is not None and not found.offline and not found.reachable else {}


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether anything at `url` answers within `timeout` (any HTTP status counts): one request, no retries.

    The request runs in a thread the caller waits on for `timeout` at most, since resolving a name has no
    timeout of its own and a dead resolver can hold it for far longer."""
    import httpx2

    answered = []

    def ask() -> None:
        try:
            httpx2.head(url, timeout=timeout)
        except Exception:  # no answer, whatever the reason (refused, timed out, no such host, a bad URL)
            return
        answered.append(url)

    thread = threading.Thread(target=ask, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)
