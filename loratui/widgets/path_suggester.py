"""Completion of file and folder paths for an Input (`Input(suggester=PathSuggester())`): the first entry of
the typed folder whose name starts with what follows the last slash; right arrow at the end takes it."""

import asyncio
import os
from pathlib import Path

from textual.suggester import Suggester


def complete_path(text: str) -> str | None:
    """`text` completed to the first matching entry (folders end in a slash), hidden ones only when asked."""
    folder, _, start = text.rpartition(os.sep)
    where = Path(folder or ("/" if text.startswith(os.sep) else ".")).expanduser()
    try:
        names = sorted(entry.name + (os.sep if entry.is_dir() else "") for entry in os.scandir(where))
    except OSError:
        return None
    for name in names:
        if name.startswith(start) and name != start and (start.startswith(".") or not name.startswith(".")):
            return text[: len(text) - len(start)] + name
    return None


class PathSuggester(Suggester):
    def __init__(self) -> None:
        # Folders change while the dialog is open: no cache; case matters in paths.
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value) if value else None
