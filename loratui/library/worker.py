"""The library worker: heavy operations for the dashboard, in a process of their own that stays warm.

    python -m loratui.library.worker

JSON lines, one object each (loratui.library.requests holds the request and result types and PROTOCOL).
In, on stdin:
    {"id": N, "op": "generate" | "combine" | "merge" | "check" | "layout" | "estimate" | "dataset", "request": {...}}
    {"id": N, "op": "cancel"}
Out, on stdout:
    {"event": "ready", "protocol": PROTOCOL, "pid": P}                 once, at start
    {"id": N, "event": "progress", "stage": S, "step": K, "total": T}  any number
    {"id": N, "event": "done", "result": {...}}                         then one of these three
    {"id": N, "event": "cancelled"}
    {"id": N, "event": "failed", "message": M, "hint": H}
Requests run one at a time; a cancel (or SIGINT) is seen between denoising steps or tokens. The base model
stays loaded between requests (WarmSession). Closing stdin cancels what runs and ends the worker. Whatever
the libraries print goes to stderr, never into the channel. The dashboard runs a second one for its quick
engine questions (estimate, dataset: loratui.browse.questions), so they never wait behind a generation.
"""

import json
import os
import queue
import signal
import sys
import threading

from engine.errors import LoratuiError, save_traceback
from loratui.library import requests
from loratui.library.requests import (
    REQUESTS,
    CheckRequest,
    CombineRequest,
    DatasetRequest,
    EstimateRequest,
    GenerateRequest,
    LayoutRequest,
    MergeRequest,
    PredictRequest,
    Progress,
    from_json,
    to_json,
)
from loratui.library.session import WarmSession


class Worker:
    def __init__(self, channel) -> None:
        self.channel = channel
        self.warm = WarmSession()
        self.stops: dict = {}  # request id -> threading.Event, set to cancel it
        self.closed = threading.Event()  # the client is gone
        self._db = None

    def send(self, **message) -> None:
        try:
            self.channel.write(json.dumps(message, default=str) + "\n")
            self.channel.flush()
        except (BrokenPipeError, ValueError):  # the client closed its end: nobody is listening
            self.closed.set()

    def read(self, stream, jobs: queue.Queue) -> None:
        """On a thread of its own, so a cancel arrives while a request runs."""
        for line in stream:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                message = line
            if isinstance(message, dict) and message.get("op") == "cancel":
                stop = self.stops.get(message.get("id"))
                if stop is not None:
                    stop.set()
                continue
            if isinstance(message, dict):
                self.stops[message.get("id")] = threading.Event()
            jobs.put(message)
        self.closed.set()
        self.cancel_all()
        jobs.put(None)

    def cancel_all(self) -> None:
        for stop in list(self.stops.values()):
            stop.set()

    def handle(self, message) -> None:
        job = message.get("id") if isinstance(message, dict) else None
        stop = self.stops.get(job) or threading.Event()
        try:
            request = _request(message)
            result = None if stop.is_set() else self.run(request, job, stop.is_set)
        except LoratuiError as exc:
            self.send(id=job, event="failed", message=exc.message, hint=exc.hint)
        except Exception as exc:
            self.warm.drop()  # a bug may have left the model half-changed
            path = save_traceback(exc)
            self.send(id=job, event="failed", message=f"unexpected failure, traceback saved in {path}", hint="")
        else:
            if result is None:
                self.send(id=job, event="cancelled")
            else:
                self.send(id=job, event="done", result=to_json(result))
        finally:
            self.stops.pop(job, None)

    def run(self, request, job, should_stop):
        from loratui.browse import questions
        from loratui.library.combine import combine
        from loratui.library.fit import check, layout
        from loratui.library.generate import generate
        from loratui.library.merge import merge
        from loratui.library.predict import predict

        def progress(event: Progress) -> None:
            self.send(id=job, event="progress", **to_json(event))

        match request:
            case GenerateRequest():
                return generate(self.db(), request, warm=self.warm, progress=progress, should_stop=should_stop)
            case PredictRequest():
                progress(Progress("predicting"))
                return predict(self.db(), request)
            case LayoutRequest():
                return layout(self.db(), request, warm=self.warm, progress=progress)
            case CombineRequest():
                progress(Progress("combining"))
                return combine(self.db(), request)
            case MergeRequest():
                self.warm.drop()  # a merge loads its own copy of the base: never hold two
                progress(Progress("merging"))
                return merge(self.db(), request)
            case CheckRequest():
                return check(self.db(), request)
            case EstimateRequest():  # the quick questions: no library needed
                return questions.estimate(request, progress, should_stop)
            case DatasetRequest():
                return questions.dataset(request)

    def db(self):
        if self._db is None:
            from loratui.db.library import open_db

            self._db = open_db()
        return self._db


def _request(message):
    if not isinstance(message, dict):
        raise LoratuiError(f"not a JSON request: {str(message).strip()[:80]}", "send one JSON object per line")
    op = message.get("op")
    if op not in REQUESTS:
        raise LoratuiError(f"unknown operation '{op}'", f"allowed: {', '.join(REQUESTS)}, cancel")
    return from_json(REQUESTS[op], message.get("request") or {})


def _claim_stdout():
    """The protocol's own copy of stdout; fd 1 then points at stderr, so stray prints cannot corrupt it."""
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def main() -> int:
    worker = Worker(_claim_stdout())
    jobs: queue.Queue = queue.Queue()
    signal.signal(signal.SIGINT, lambda *_: worker.cancel_all())
    threading.Thread(target=worker.read, args=(sys.stdin, jobs), daemon=True).start()
    worker.send(event="ready", protocol=requests.PROTOCOL, pid=os.getpid())
    from engine.adapters.load import quiet

    quiet()  # imports diffusers and transformers now, while nobody waits for a result
    while not worker.closed.is_set():
        message = jobs.get()
        if message is None:
            break
        worker.handle(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
