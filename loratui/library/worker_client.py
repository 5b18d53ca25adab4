"""The dashboard's side of the library worker (loratui.library.worker): start it, send requests, read progress.

Imports no torch: the dashboard process uses it. One request at a time:

    with WorkerClient() as worker:
        job = worker.submit(GenerateRequest(prompt="a red circle", adapters=[Pick("ink", 0.8)]))
        for progress in job:        # Progress: "loading base", "denoising step 3/25", ...
            ...                     # job.cancel() may be called from any thread
        job.outcome                 # Outcome: done (with the typed result), cancelled, or failed (a LoratuiError)

The worker starts on the first request and keeps its base model loaded between requests; if it dies, the
request in flight fails with a pointer to its log and the next request starts a fresh one.
"""

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import LoratuiError
from engine.home import home
from loratui.library.requests import PROTOCOL, RESULTS, Progress, from_json, to_json

DONE, CANCELLED, FAILED = "done", "cancelled", "failed"
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class Outcome:
    status: str  # DONE, CANCELLED or FAILED
    result: object = None  # the op's result type (loratui.library.requests) when done
    error: LoratuiError | None = None  # when failed: the message and hint to show


class Job:
    """One request in the worker: iterate for its progress; `outcome` is set when iteration ends."""

    def __init__(self, client: "WorkerClient", job_id: int, op: str) -> None:
        self._client, self.id, self.op = client, job_id, op
        self.outcome: Outcome | None = None

    def __iter__(self) -> Iterator[Progress]:
        while self.outcome is None:
            message = self._client._read()
            if message is None:
                self.outcome = Outcome(FAILED, error=self._client._died())
            elif message.get("id") != self.id:
                continue
            elif message["event"] == "progress":
                yield Progress(message["stage"], message.get("step"), message.get("total"))
            elif message["event"] == "done":
                self.outcome = Outcome(DONE, result=from_json(RESULTS[self.op], message["result"]))
            elif message["event"] == "cancelled":
                self.outcome = Outcome(CANCELLED)
            else:
                self.outcome = Outcome(FAILED, error=LoratuiError(message["message"], message.get("hint") or ""))

    def wait(self) -> Outcome:
        for _ in self:
            pass
        return self.outcome

    def cancel(self) -> None:
        """Ask the worker to stop this request at its next step; the worker itself keeps running."""
        if self.outcome is None:
            self._client._write({"id": self.id, "op": "cancel"})


class WorkerClient:
    def __init__(self) -> None:
        self._env = dict(os.environ)  # as it is now (LORATUI_HOME above all), for every worker started
        self._proc: subprocess.Popen | None = None
        self._ids = itertools.count(1)
        self._job: Job | None = None
        self._write_lock = threading.Lock()
        self._ask_lock = threading.Lock()  # ask() callers take turns
        self.log = home() / "logs" / "worker.log"  # the worker's stderr

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the worker (if it is not running) and wait for its hello."""
        if self.running:
            return
        self.close()  # a worker that died: let go of its pipes
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            # A session of its own: a Ctrl+C in the dashboard's terminal is not the worker's to hear.
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "loratui.library.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, env=self._env, text=True, encoding="utf-8", bufsize=1, start_new_session=True,
            )
        hello = self._read()
        if hello is None or hello.get("event") != "ready":
            raise self._died()
        if hello.get("protocol") != PROTOCOL:
            self.close()
            raise LoratuiError(f"the library worker speaks protocol {hello.get('protocol')}, this dashboard "
                               f"{PROTOCOL}", "reinstall loratui so both come from one version")

    def submit(self, request) -> Job:
        """Send a request (loratui.library.requests); the worker starts if it is not running."""
        if self._job is not None and self._job.outcome is None:
            raise LoratuiError(f"the library worker is busy ({self._job.op})", "wait for it, or cancel it")
        self.start()
        self._job = Job(self, next(self._ids), request.op)
        self._write({"id": self._job.id, "op": request.op, "request": to_json(request)})
        return self._job

    def call(self, request, on_progress=None) -> Outcome:
        """Submit and wait; `on_progress(Progress)` hears each step."""
        job = self.submit(request)
        for progress in job:
            if on_progress is not None:
                on_progress(progress)
        return job.outcome

    def ask(self, request, cancelled=lambda: False) -> Outcome:
        """Call from any thread, waiting for the worker to be free: for questions asked on several threads where
        only the newest answer counts. One whose asker gave up (`cancelled()`) while waiting is never sent;
        one in flight is cancelled at its next progress step."""
        with self._ask_lock:
            if cancelled():
                return Outcome(CANCELLED)
            job = self.submit(request)
            for _ in job:
                if cancelled():
                    job.cancel()
            return job.outcome

    def close(self) -> None:
        """End the worker: closing its stdin cancels what runs; it is killed if it does not stop in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def __enter__(self) -> "WorkerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, message: dict) -> None:
        with self._write_lock:
            proc = self._proc
            try:
                proc.stdin.write(json.dumps(message) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, ValueError, AttributeError):
                pass  # the worker is gone: reading its output tells how

    def _read(self) -> dict | None:
        """The next message, or None when the worker's output has ended."""
        line = self._proc.stdout.readline() if self._proc is not None else ""
        return json.loads(line) if line else None

    def _died(self) -> LoratuiError:
        code = self._proc.wait(timeout=STOP_TIMEOUT_S) if self._proc is not None else None
        return LoratuiError(f"the library worker stopped (exit code {code})", f"its output is in {self.log}")
