"""The queue: specs run one after another by a detached worker; a bad job is recorded and the queue goes on."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from homes import inline, share_builtins

SPEC = """
name = "{name}"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "{source}"
caption_column = "{caption}"
bad_images = "skip"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 12  # one epoch: every image is decoded once
checkpointing_steps = 0
cache = false
"""


@pytest.fixture
def home(tmp_path, builtin_home):
    return share_builtins(tmp_path / "home", builtin_home)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command in its own process: for the worker, and a worker's refusal while another holds the lock."""
    return subprocess.run([sys.executable, "-m", "loratui", *args], env={**os.environ, "LORATUI_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)


def write(tmp_path: Path, name: str, caption: str = "text", extra: str = "", source: str = "builtin:shapes") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, caption=caption, source=source) + extra)
    return str(path)


def jobs(home: Path) -> list[dict]:
    return json.loads(inline(home, "queue", "ls", "--json").stdout)


@pytest.mark.slow
def test_three_specs_the_middle_one_bad_run_the_first_and_the_third(home, tmp_path):
    from loratui.db.library import open_db

    # The third trains on a copy of the shapes with one PNG truncated, which preflight skips (bad_images =
    # "skip"): without the cache every step decodes images, so the bad file left in would fail the job.
    assert inline(home, "builtin", "path", "shapes").returncode == 0
    shapes = tmp_path / "shapes"
    shutil.copytree(home / "builtin" / "shapes", shapes)
    victim = sorted((shapes / "train").glob("*.png"))[5]
    victim.write_bytes(victim.read_bytes()[:200])
    specs = [write(tmp_path, "first"), write(tmp_path, "middle", caption="caption"),
             write(tmp_path, "third", source=str(shapes))]
    added = inline(home, "queue", "add", *specs)
    assert added.returncode == 0, added.stderr
    assert [line.split(":")[0] for line in added.stdout.splitlines()] == ["queued job 1", "queued job 2",
                                                                          "queued job 3"]
    worker = cli(home, "queue", "run", "--detach")
    assert worker.returncode == 0 and worker.stdout.strip().isdigit()
    db = open_db(home / "library.db")
    deadline = time.monotonic() + 300
    while db.execute("SELECT count(*) FROM queue WHERE status IN ('queued', 'running')").fetchone()[0]:
        assert time.monotonic() < deadline, jobs(home)
        time.sleep(0.5)  # bounded polling of the detached worker's progress
    done = jobs(home)
    assert [(j["name"], j["status"]) for j in done] == [("first", "finished"), ("middle", "failed"),
                                                        ("third", "finished")]
    assert "data.caption_column: no column 'caption'" in done[1]["error"] and done[1]["run_id"] is None
    runs = {r["id"]: r["status"] for r in json.loads(inline(home, "runs", "ls", "--json").stdout)}
    assert runs == {done[0]["run_id"]: "finished", done[2]["run_id"]: "finished"}
    assert "job 2 (middle): failed" in (home / "logs" / "queue-worker.log").read_text()
    third_run = json.loads(inline(home, "runs", "show", done[2]["run_id"], "--json").stdout)
    assert json.loads((Path(third_run["dir"]) / "preflight.json").read_text())["skip_rows"] != []


def test_add_refuses_invalid_specs_and_rm_removes_jobs(home, tmp_path):
    good, bad = write(tmp_path, "good"), write(tmp_path, "bad", extra="[lora]\nrank = 0\n")
    refused = inline(home, "queue", "add", good, bad)
    assert refused.returncode == 2 and "lora.rank: must be > 0" in refused.stderr
    assert "nothing was queued" in refused.stderr and jobs(home) == []
    assert inline(home, "queue", "add", good, good).returncode == 0
    assert inline(home, "queue", "rm", "1").returncode == 0
    assert [j["id"] for j in jobs(home)] == [2]
    missing = inline(home, "queue", "rm", "7")
    assert missing.returncode == 2 and "unknown queue job(s): 7" in missing.stderr


def test_a_second_worker_is_refused(home, monkeypatch):
    from engine.errors import LoratuiError
    from loratui.runs.queue import WorkerLock

    monkeypatch.setenv("LORATUI_HOME", str(home))
    with WorkerLock():
        out = cli(home, "queue", "run")
        assert out.returncode == 2 and "a queue worker is already running" in out.stderr
        with pytest.raises(LoratuiError):
            with WorkerLock():
                pass
