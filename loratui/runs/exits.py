"""What the training processes died of. `accelerate launch` exits 1 whatever its child died of, so a signal
that killed a training process (the OOM killer's SIGKILL, a kill -9) is read from what the launcher printed
to run.log during this launch: accelerate's `died with <Signals.SIGKILL: 9>`, or torchrun's failure report
(`exitcode  : -9`); a launcher killed itself has a negative return code."""

import re
import signal
from pathlib import Path

_TAIL_BYTES = 64 * 1024  # the launchers' reports come last
_SIGNALLED = (
    re.compile(r"died with <Signals\.SIG\w+: (\d+)>"),  # accelerate's single-process launcher
    re.compile(r"exitcode\s*:\s*-(\d+)\b"),  # torchrun's report of a failed rank
)
_ROOT_CAUSE = "Root Cause (first observed failure)"


def log_size(log: Path) -> int:
    """Where this launch's output starts in run.log (resumes append to it)."""
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def killing_signal(code: int | None, log: Path, start: int = 0) -> int | None:
    """The signal that killed the launcher or a training process it started, None when none did."""
    if code is not None and code < 0:
        return -code
    if not code:
        return None
    try:
        with open(log, "rb") as handle:
            handle.seek(max(start, handle.seek(0, 2) - _TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    # torchrun lists every rank it lost, the one that failed first last: one it killed on the way is not the cause.
    text = text[max(0, text.rfind(_ROOT_CAUSE)):]
    found = [int(match.group(1)) for pattern in _SIGNALLED for match in pattern.finditer(text)]
    return found[-1] if found else None


def signal_words(number: int) -> str:
    """'signal 9 (SIGKILL)'."""
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"
