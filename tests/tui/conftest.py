"""Dashboard tests: runs rows in a temp library.db and scripted events.jsonl files; no training."""

import json
import math
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import Input

from loratui.db.library import open_db

from .tmux import Tmux

T0 = 1_736_000_000.0  # scripted event times start here, so throughput and ETA are deterministic


@pytest.fixture(autouse=True)
def steady_screen(monkeypatch):
    """No cursor blink, one time zone: screens look the same on every run."""
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.fixture
def db():
    library = open_db()
    yield library
    library.close()


def add_run(db, run_id: str, *, status: str = "running", steps: int = 0, total: int = 100, loss=None,
            pid=None, pid_start=None, name: str | None = None, created: str = "2025-01-04T10:00:00Z",
            spec: str = 'name = "demo"\n') -> Path:
    """A runs row with its folder under LORATUI_HOME/runs; returns the folder."""
    run_dir = Path(os.environ["LORATUI_HOME"]) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    db["runs"].insert({
        "id": run_id, "name": name or run_id, "task": "text-to-image", "dir": str(run_dir), "spec": spec,
        "status": status, "pid": pid, "pid_start": pid_start, "created": created, "started": created,
        "step": steps, "total_steps": total, "last_loss": loss,
    })
    return run_dir


def step_event(seq: int, step: int, total: int, *, memory: str = "rss", devices: int = 2) -> dict:
    if memory == "cuda":
        mem = {"kind": "cuda", "devices": [
            {"index": i, "allocated": (2 + i + step / 100) * 2**30, "reserved": (3 + i) * 2**30,
             "peak": (3.5 + i + step / 200) * 2**30} for i in range(devices)]}
    else:
        mem = {"kind": "rss", "rss": (0.6 + step / 1000) * 2**30}
    return {"v": 1, "seq": seq, "time": T0 + 5 + step * 0.5, "type": "step", "step": step, "total_steps": total,
            "epoch": round(step / 25, 2), "loss": 0.5 * math.exp(-step / 30) + 0.05 * math.sin(step),
            "lr": 1e-4 * min(1.0, step / 10), "grad_norm": 1.0, "samples_per_s": 8.0, "step_time": 0.5,
            "memory": mem}


def script_events(run_dir: Path, steps: int, *, total: int = 100, memory: str = "rss", sample: bool = True,
                  end: str | None = None, first_step: int = 1, seq: int = 0) -> int:
    """Append a scripted event stream (run_started, steps, a sample, an end); returns the last seq."""
    events = []
    if first_step == 1:
        events.append({"v": 1, "seq": 0, "time": T0, "type": "run_started", "run_id": run_dir.name,
                       "name": run_dir.name, "task": "text-to-image", "total_steps": total, "num_processes": 1,
                       "device": "cuda" if memory == "cuda" else "cpu", "mixed_precision": "no",
                       "resume_step": 0})
    for step in range(first_step, first_step + steps):
        events.append(step_event(0, step, total, memory=memory))
        if sample and step % 20 == 0:
            path = run_dir / "samples" / f"step-{step:06d}.png"
            write_sample(path, step)
            events.append({"v": 1, "seq": 0, "time": T0 + 5 + step * 0.5, "type": "sample_saved",
                           "step": step, "path": str(path.relative_to(run_dir)), "prompt": "a red circle"})
    if end:
        last = first_step + steps - 1
        events.append({"v": 1, "seq": 0, "time": T0 + 10 + last * 0.5, "type": end, "step": last})
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        for event in events:
            seq += 1
            event["seq"] = seq
            handle.write(json.dumps(event) + "\n")
    return seq


def script_completions(run_dir: Path, seq: int, step: int, answers: list[str]) -> int:
    """sample_saved events as a causal-lm run writes them: one per [validation] prompt, with the completion."""
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        for number, answer in enumerate(answers):
            seq += 1
            handle.write(json.dumps({"v": 1, "seq": seq, "time": 1.0, "type": "sample_saved", "step": step,
                                     "path": f"samples/step-{step:06d}-{number}.txt", "prompt": f"question {number}",
                                     "text": answer}) + "\n")
    return seq


def write_sample(path: Path, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (32, 32), (20, 20, 40))
    for x in range(32):
        for y in range(32):
            if (x - 16) ** 2 + (y - 16) ** 2 < (6 + step % 10) ** 2:
                image.putpixel((x, y), (220, 40, 40))
    image.save(path)


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Wait for the dashboard's polling worker threads to deliver: bounded, awaiting the UI between checks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def settings_saved(app) -> None:
    """Wait for the app's settings writes (an empty list would make wait_for_complete wait for all)."""
    pending = [worker for worker in app.workers if worker.group == "settings"]
    if pending:
        await app.workers.wait_for_complete(pending)


@pytest.fixture
def tmux(loratui_home):
    """A tmux server of this test's own, running `loratui` with this test's LORATUI_HOME."""
    # A short socket path: unix socket paths are limited to ~100 bytes.
    socket = f"/tmp/loratui-test-{os.getpid()}-{time.monotonic_ns()}.sock"
    session = Tmux(socket, loratui_home)
    yield session
    session.close()
    if os.path.exists(socket):
        os.unlink(socket)
