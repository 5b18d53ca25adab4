"""Fault injection for tests: LORATUI_FAULT_<NAME>=<step> makes a run fail at that step, for real.

Unset in normal use. Tests use it to kill a process in the middle of a checkpoint write, to poison a loss
with NaN, or to raise an out-of-memory error, at a step they choose, which no outside timing can do.
"""

import os
import signal
import time


def due(name: str, step: int) -> bool:
    return os.environ.get(f"LORATUI_FAULT_{name}") == str(step)


def kill_if_due(name: str, step: int) -> None:
    if due(name, step):
        os.kill(os.getpid(), signal.SIGKILL)


def hang_if_due(name: str, step: int) -> None:
    """Stop answering, as a process stuck in a driver call or a dead NFS mount would."""
    if due(name, step):
        while True:
            time.sleep(3600)
