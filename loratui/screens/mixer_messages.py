"""Past-tense facts the mixer's job worker posts to its screen."""

from textual.message import Message

from loratui.library.requests import Progress


class JobProgressed(Message):
    """How far the library worker has got; a newer one replaces any still queued."""

    def __init__(self, op: str, progress: Progress) -> None:
        super().__init__()
        self.op = op
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgressed)


class JobEnded(Message):
    """A job's Outcome (None: a bug, reported by the worker's failure handler) and, for an image, the image."""

    def __init__(self, op: str, outcome, image=None) -> None:
        super().__init__()
        self.op = op
        self.outcome = outcome
        self.image = image
