"""Fault injection for tests: LORATUI_FAULT_<NAME>=<step> makes a run fail at that step, for real.

Unset in normal use. Tests use it to kill a process in the middle of a checkpoint write, to poison a loss
with NaN, or to raise an out-of-memory error, at a step they choose, which no outside timing can do.
"""

import os
import signal


def due(name: str, step: int) -> bool:
    return os.environ.get(f"LORATUI_FAULT_{name}") == str(step)


def kill_if_due(name: str, step: int) -> None:
    if due(name, step):
        os.kill(os.getpid(), signal.SIGKILL)
