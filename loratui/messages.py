"""Past-tense facts that dashboard workers post to their screens.

Progress messages carry the whole current state, not a delta, so a newer one may replace an older one
still queued (toolong's `can_replace`): however fast events arrive, the UI handles only the latest.
"""

from textual.message import Message


class RunsRefreshed(Message):
    """The list of runs, with live status, progress and loss."""

    def __init__(self, rows: list[dict]) -> None:
        super().__init__()
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsRefreshed)


class RunProgressed(Message):
    """A run's state so far (loratui.watch.RunView)."""

    def __init__(self, view) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunProgressed) and message.view.run_id == self.view.run_id


class AdaptersLoaded(Message):
    """A page of the library's adapters for a filter (loratui.library.views.LibraryPage)."""

    def __init__(self, page) -> None:
        super().__init__()
        self.page = page

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AdaptersLoaded)


class FacetsLoaded(Message):
    """The values each facet of the library can take ({facet: [value, ...]})."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        super().__init__()
        self.values = values

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FacetsLoaded)


class AdapterDetailLoaded(Message):
    """One adapter's detail (loratui.library.views.AdapterView) and its images, decoded (None: unreadable)."""

    def __init__(self, view, images: list[tuple[str, object]]) -> None:
        super().__init__()
        self.view = view
        self.images = images

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AdapterDetailLoaded)


class LibraryChanged(Message):
    """An edit, rename, removal, export or import is done (loratui.screens.library_changes.Change)."""

    def __init__(self, change) -> None:
        super().__init__()
        self.change = change


class StopRequested(Message):
    """The run's supervisor was signalled to stop cleanly."""

    def __init__(self, run_id: str, pid: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.pid = pid


class RunLaunched(Message):
    """The dashboard started a run (`action`: launch or resume) with a detached supervisor
    (loratui.detached.Launched)."""

    def __init__(self, action: str, launched) -> None:
        super().__init__()
        self.action = action
        self.launched = launched


class SpecRead(Message):
    """A spec to open in the run settings (a run's, to duplicate it, or a file's), with where to save it."""

    def __init__(self, values: dict, origin: str, save_path) -> None:
        super().__init__()
        self.values = values
        self.origin = origin
        self.save_path = save_path


class AdapterFound(Message):
    """The library adapter a run produced."""

    def __init__(self, run_id: str, adapter_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.adapter_id = adapter_id
