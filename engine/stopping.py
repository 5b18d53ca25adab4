"""Clean stops. The first SIGINT or SIGTERM asks the loop to stop after the current step (it then saves a
checkpoint and the adapter); a second one exits at once. A run also stops cleanly when the `loratui run`
process supervising it has died, instead of training on unseen."""

import os
import signal
import time

from engine.liveness import is_alive

SUPERVISOR_PID = "LORATUI_SUPERVISOR_PID"
SUPERVISOR_START = "LORATUI_SUPERVISOR_START"
_CHECK_EVERY_S = 2.0


class StopRequest:
    def __init__(self) -> None:
        self.reason: str | None = None
        pid, start = os.environ.get(SUPERVISOR_PID), os.environ.get(SUPERVISOR_START)
        self._supervisor = (int(pid), float(start)) if pid and start else None
        self._checked = time.monotonic()

    @classmethod
    def install(cls) -> "StopRequest":
        request = cls()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, request._on_signal)
        return request

    def _on_signal(self, signum, frame) -> None:
        if self.reason is not None:
            os._exit(128 + signum)
        self.reason = f"{signal.Signals(signum).name} received"

    def poll(self) -> bool:
        """True once a stop is requested; checks the supervisor every few seconds."""
        now = time.monotonic()
        if self.reason is None and self._supervisor and now - self._checked > _CHECK_EVERY_S:
            self._checked = now
            if not is_alive(*self._supervisor):
                self.reason = "the supervising loratui process died"
        return self.reason is not None
