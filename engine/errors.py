"""The one base class for failures a user can fix: a short message plus a hint."""


class LoratuiError(Exception):
    """An expected failure. The CLI prints `error: message` and `hint: hint` and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class HubUnreachable(LoratuiError):
    """The Hub could not be reached (offline, no network): the thing asked for may well exist."""


def is_unreachable(exc: BaseException) -> bool:
    """A failure to reach the Hub at all, as opposed to an answer saying no."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(exc, (ConnectionError, LocalEntryNotFoundError))
