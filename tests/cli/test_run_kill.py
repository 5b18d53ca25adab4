"""A run killed outright (supervisor and training, SIGKILL, as the OOM killer or a reboot would) shows as
crashed to every reader, the dashboard's included, with every step it recorded; a run beside it finishes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "{name}"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = {steps}
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 0
"""


def env(home: Path) -> dict:
    return {**os.environ, "LORATUI_HOME": str(home)}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loratui", *args], env=env(home), capture_output=True, text=True,
                          timeout=300)


def start(home: Path, tmp_path: Path, name: str, steps: int) -> subprocess.Popen:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(name=name, steps=steps))
    # Its own session, as a terminal gives a foreground job its own process group.
    return subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(spec)], env=env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def recorded_steps(home: Path, name: str) -> list[int]:
    from engine.events import read_events

    return [e["step"] for path in (home / "runs").glob(f"{name}-*/events.jsonl") for e in read_events(path)
            if e["type"] == "step"]


def test_a_killed_run_is_crashed_with_its_steps_and_its_neighbour_finishes(tmp_path, builtin_home, monkeypatch):
    home = share_builtins(tmp_path / "home", builtin_home)
    assert cli(home, "runs", "ls").returncode == 0
    victim = start(home, tmp_path, "victim", 5000)
    neighbour = start(home, tmp_path, "neighbour", 30)
    deadline = time.monotonic() + 240
    while len(recorded_steps(home, "victim")) < 3:  # bounded polling of a file another process appends to
        assert victim.poll() is None and time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)
    training = psutil.Process(victim.pid).children(recursive=True)
    for group in {os.getpgid(victim.pid), *(os.getpgid(p.pid) for p in training)}:  # the training's own session too
        os.killpg(group, signal.SIGKILL)
    victim.communicate(timeout=60)
    _, alive = psutil.wait_procs(training, timeout=30)
    assert not alive and neighbour.poll() is None
    steps = recorded_steps(home, "victim")

    monkeypatch.setenv("LORATUI_HOME", str(home))
    from loratui.watch import library, list_runs

    with library() as db:  # the dashboard reads first: it catches up too
        (row,) = [r for r in list_runs(db) if r["name"] == "victim"]
        assert (row["status"], row["step"]) == ("crashed", steps[-1])
        assert "without recording an end" in row["error"]
        logged = db.execute("SELECT step FROM steps WHERE run_id = ? AND loss IS NOT NULL ORDER BY step", [row["id"]])
        assert [step for (step,) in logged] == steps
    listed = {r["name"]: r for r in json.loads(cli(home, "runs", "ls", "--json").stdout)}
    assert (listed["victim"]["status"], listed["victim"]["step"]) == ("crashed", steps[-1])
    shown = json.loads(cli(home, "runs", "show", row["id"], "--json").stdout)
    assert (shown["status"], shown["step"]) == ("crashed", steps[-1])

    _, err = neighbour.communicate(timeout=300)
    assert neighbour.returncode == 0, err[-3000:]
    finished = {r["name"]: r for r in json.loads(cli(home, "runs", "ls", "--json").stdout)}["neighbour"]
    assert (finished["status"], finished["step"], finished["error"]) == ("finished", 30, None)
    assert listed["victim"]["id"] != finished["id"]
