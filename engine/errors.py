"""The one base class for failures a user can fix: a short message plus a hint; and what the faces do with the
others (bugs): one line of them, and their traceback kept in a file."""

from pathlib import Path


class LoratuiError(Exception):
    """An expected failure. The CLI prints `error: message` and `hint: hint` and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def first_line(exc: BaseException, limit: int = 300) -> str:
    """What a library's error says, in one line: its message's first line (its type's name when it has none),
    cut at `limit` characters."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def save_traceback(error: BaseException, path: Path | None = None, prefix: str = "crash") -> str:
    """Keep the traceback of a bug in a file, not on the user's screen: at `path`, or in a new file
    LORATUI_HOME/logs/PREFIX-TIME.log."""
    import traceback
    from datetime import UTC, datetime

    if path is None:
        from engine.home import home

        logs = home() / "logs"
        logs.mkdir(exist_ok=True)
        path = logs / f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}.log"
    path.write_text("".join(traceback.format_exception(error)))
    return str(path)


class HubUnreachable(LoratuiError):
    """The Hub could not be reached (offline, no network): the thing asked for may well exist."""


def is_unreachable(exc: BaseException) -> bool:
    """A failure to reach the Hub at all, as opposed to an answer saying no."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(exc, (ConnectionError, LocalEntryNotFoundError))
