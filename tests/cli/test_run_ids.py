"""Run ids are unique and assigned atomically in library.db: runs started at the same moment stay separate
rows and folders, whatever their names and output folders, while readers poll the library; an id comes from
the spec's name, never its output folder's, and the training knows its id when it differs from its folder's
name."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

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
[output]
dir = "{dir}"
"""
LOCKED = "database is locked"


def env(home: Path) -> dict:
    return {**os.environ, "LORATUI_HOME": str(home)}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loratui", *args], env=env(home), capture_output=True, text=True,
                          timeout=300)


def spec(tmp_path: Path, file: str, name: str, steps: int, folder: str = "") -> Path:
    path = tmp_path / file
    path.write_text(SPEC.format(name=name, steps=steps, dir=folder))
    return path


class Poller(threading.Thread):
    """`loratui runs ls --json` over and over until told to stop, keeping every answer."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home, self.done, self.answers = home, threading.Event(), []

    def run(self) -> None:
        while not self.done.is_set():
            self.answers.append(cli(self.home, "runs", "ls", "--json"))


def check_run(row: dict) -> None:
    """The row matches its own run folder: name, id, steps, status, and the adapter's recorded id."""
    from safetensors import safe_open

    from engine.events import read_events

    folder = Path(row["dir"])
    events = read_events(folder / "events.jsonl")
    (started,) = [e for e in events if e["type"] == "run_started"]
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert (started["run_id"], started["name"]) == (row["id"], row["name"])
    assert (row["status"], row["step"], row["total_steps"], row["error"]) == ("finished", steps[-1], steps[-1], None)
    assert (folder / "run_id").read_text() == row["id"]
    with safe_open(folder / "pytorch_lora_weights.safetensors", "np") as adapter:
        assert adapter.metadata()["loratui.run_id"] == row["id"]


def test_runs_started_together_stay_separate_while_the_library_is_read(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    assert cli(home, "runs", "ls").returncode == 0  # the library exists before the race
    specs = {
        "alpha": spec(tmp_path, "alpha.toml", "alpha", 6, str(tmp_path / "a" / "out")),
        "beta": spec(tmp_path, "beta.toml", "beta", 9, str(tmp_path / "b" / "out")),
        "twin5": spec(tmp_path, "twin5.toml", "twin", 5),  # same name, default folder: maybe the same second
        "twin7": spec(tmp_path, "twin7.toml", "twin", 7),
    }
    poller = Poller(home)
    poller.start()
    procs = {key: subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(path)], env=env(home),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for key, path in specs.items()}
    outputs = {key: proc.communicate(timeout=600) for key, proc in procs.items()}
    poller.done.set()
    poller.join(timeout=300)

    for key, (_, err) in outputs.items():
        assert procs[key].returncode == 0, err[-3000:]
        assert LOCKED not in err
    assert poller.answers and all(a.returncode == 0 and LOCKED not in a.stderr for a in poller.answers)
    for answer in poller.answers:  # every snapshot: one row per run, never merged
        rows = json.loads(answer.stdout)
        assert len({r["id"] for r in rows}) == len({r["dir"] for r in rows}) == len(rows) <= 4

    rows = {row["id"]: row for row in json.loads(cli(home, "runs", "ls", "--json").stdout)}
    ids = {key: outputs[key][0].strip().splitlines()[-1] for key in specs}
    assert sorted(ids.values()) == sorted(rows) and len(rows) == 4
    # The spec's name names the run wherever its folder goes, never the folder's name (both are "out").
    assert ids["alpha"].startswith("alpha-") and ids["beta"].startswith("beta-")
    assert Path(rows[ids["alpha"]]["dir"]) == tmp_path / "a" / "out"
    assert Path(rows[ids["beta"]]["dir"]) == tmp_path / "b" / "out"
    assert ids["twin5"] != ids["twin7"] and all(ids[k].startswith("twin-") for k in ("twin5", "twin7"))
    assert {Path(rows[ids[k]]["dir"]) for k in ("twin5", "twin7")} == {home / "runs" / ids[k] for k in ("twin5", "twin7")}
    assert {key: rows[ids[key]]["step"] for key in specs} == {"alpha": 6, "beta": 9, "twin5": 5, "twin7": 7}
    for row in rows.values():
        check_run(row)
        assert LOCKED not in (Path(row["dir"]) / "run.log").read_text()

    # A later run may reuse an output folder's name, not a folder in use.
    again = cli(home, "run", "--spec", str(spec(tmp_path, "alpha2.toml", "alpha", 2, str(tmp_path / "a" / "out"))))
    assert again.returncode == 2 and f"error: output.dir {tmp_path / 'a' / 'out'} is not empty" in again.stderr
    later = cli(home, "run", "--spec", str(spec(tmp_path, "gamma.toml", "gamma", 2, str(tmp_path / "c" / "out"))))
    assert later.returncode == 0, later.stderr[-3000:]
    gamma = later.stdout.strip().splitlines()[-1]
    assert gamma.startswith("gamma-")
    check_run(next(r for r in json.loads(cli(home, "runs", "ls", "--json").stdout) if r["id"] == gamma))

    with sqlite3.connect(home / "library.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
