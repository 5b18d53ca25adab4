"""A base model kept loaded between operations, with library adapters added once under their names.

The CLI uses a fresh one per command; the worker keeps one for its life, so a second generation with other
weights only switches weights (engine.adapters.load.Session) instead of loading the base again.
"""

import gc
from collections.abc import Callable

from loratui.library.requests import Progress


class WarmSession:
    def __init__(self) -> None:
        self.session = None
        self.base_loads = 0  # every base model loaded, over the holder's life
        self._files: dict[str, str] = {}  # adapter label (library name) -> the sha256 loaded under it

    def get(self, base: str, device: str | None, rows: list[dict],
            progress: Callable[[Progress], None]):
        """A Session on `base` with the library entries `rows` loaded (their weights not yet chosen)."""
        from engine.adapters.load import Session, default_device, quiet

        device = device or default_device()
        # A name now held by other bytes (removed and re-imported) cannot be reloaded into a Session.
        stale = any(self._files.get(row["name"], row["sha256"]) != row["sha256"] for row in rows)
        if self.session is None or (self.session.base, self.session.device) != (base, device) or stale:
            self.drop()
            quiet()
            progress(Progress("loading base"))
            self.session = Session(base, device=device)
            self.base_loads += 1
        new = [row for row in rows if row["name"] not in self._files]
        if new:
            progress(Progress("loading adapters"))
        for row in new:
            self.session.add(row["name"], row["path"])
            self._files[row["name"]] = row["sha256"]
        return self.session

    def drop(self) -> None:
        """Forget the loaded model (after a failure left it in doubt, or before loading another)."""
        self.session, self._files = None, {}
        gc.collect()
