"""Past-tense facts the Browse and run-settings workers post to their screens."""

from textual.message import Message


class NetworkChecked(Message):
    """The Hub was probed (or a call failed): `banner` is empty when it answers."""

    def __init__(self, banner: str) -> None:
        super().__init__()
        self.banner = banner


class EntriesLoaded(Message):
    """Entries of one kind from the local sources ("local") or a Hub search ("hub"); `show` is the ref of
    an entry to put the cursor on (a path just typed)."""

    def __init__(self, kind: str, origin: str, entries: list, show: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.origin = origin
        self.entries = entries
        self.show = show


class EntryDescribed(Message):
    """The detail of an entry: a ModelDetail or a DatasetDetail (with the Hub's card for Hub datasets)."""

    def __init__(self, entry, detail, card: dict | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.detail = detail
        self.card = card


class EntryFailed(Message):
    """Reading an entry's detail failed with a message for the user (a gated repo, say)."""

    def __init__(self, entry, error) -> None:
        super().__init__()
        self.entry = entry
        self.error = error


class EstimateReady(Message):
    """The pre-launch estimate for the spec as it was when the estimate started, and the problems the
    engine's preflight found (`checked` is False when the dataset was left for launch to check)."""

    def __init__(self, estimate, spec_hash: str, problems: list[str], checked: bool) -> None:
        super().__init__()
        self.estimate = estimate
        self.spec_hash = spec_hash
        self.problems = problems
        self.checked = checked

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EstimateReady)
