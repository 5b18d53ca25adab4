"""Stopping and crashing: Ctrl-C to the process group and `runs stop` end a run cleanly ("stopped", a
checkpoint and a loadable adapter); a second request ends it at once; a killed run shows as crashed."""

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
name = "signals"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 5000
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 0
"""


@pytest.fixture
def home(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    return home


def env(home: Path) -> dict:
    return {**os.environ, "LORATUI_HOME": str(home)}


def cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loratui", *args], env=env(home), capture_output=True, text=True,
                          timeout=timeout)


def start(home: Path, *args: str) -> subprocess.Popen:
    # Its own session, as a terminal gives a foreground job its own process group.
    return subprocess.Popen([sys.executable, "-m", "loratui", "run", *args], env=env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def events(home: Path) -> list[dict]:
    from engine.events import read_events

    runs = list((home / "runs").iterdir()) if (home / "runs").exists() else []
    return read_events(runs[0] / "events.jsonl") if runs else []


def wait_for_steps(home: Path, steps: int, alive=lambda: True, timeout: float = 240) -> None:
    """Bounded polling of the run's event file until `steps` step events exist."""
    deadline = time.monotonic() + timeout
    while sum(e["type"] == "step" for e in events(home)) < steps:
        assert alive(), "the run ended early"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def run_row(home: Path) -> dict:
    listed = json.loads(cli(home, "runs", "ls", "--json").stdout)
    assert len(listed) == 1
    return listed[0]


def assert_stopped_cleanly(home: Path) -> None:
    from diffusers import StableDiffusionPipeline

    row = run_row(home)
    stopped = events(home)[-1]
    assert row["status"] == "stopped" and stopped["type"] == "run_stopped"
    assert stopped["reason"] == "SIGTERM received" and 0 < stopped["step"] < 5000
    checkpoint = Path(stopped["checkpoint"])
    assert checkpoint.name == f"checkpoint-{stopped['step']:06d}" and (checkpoint / "COMPLETE").is_file()
    pipe = StableDiffusionPipeline.from_pretrained(home / "builtin" / "tiny-sd")
    pipe.load_lora_weights(Path(stopped["adapter_path"]).parent)
    assert pipe.unet.peft_config
    assert_partial_in_library(home, row["id"], stopped["step"])


def assert_partial_in_library(home: Path, run_id: str, step: int) -> None:
    """The stopped run's adapter enters the library marked partial, with the step it reached."""
    from homes import inline

    (adapter,) = json.loads(inline(home, "library", "ls", "--json").stdout)
    assert (adapter["name"], adapter["tags"], adapter["source_run"]) == (f"{run_id}-step{step}", ["partial"], run_id)
    listed = inline(home, "library", "ls").stdout.splitlines()
    assert listed[1].split()[1] == adapter["name"] and listed[1].split()[-1] == "partial", listed
    shown = inline(home, "library", "show", adapter["name"]).stdout
    assert "notes:" in shown and f"partial: saved when the run stopped at step {step} of 5000" in shown, shown


def test_ctrl_c_to_the_process_group_saves_and_stops(home, tmp_path):
    proc = start(home, "--spec", str(tmp_path / "run.toml"))
    wait_for_steps(home, 3, alive=lambda: proc.poll() is None)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: every process of the foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped at step" in err
    assert_stopped_cleanly(home)


def test_runs_stop_stops_a_detached_run(home, tmp_path):
    out = cli(home, "run", "--detach", "--spec", str(tmp_path / "run.toml"))
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    wait_for_steps(home, 2)
    stop = cli(home, "runs", "stop", run_id)
    assert stop.returncode == 0 and "stop requested" in stop.stdout
    assert cli(home, "runs", "logs", run_id, "--follow").returncode == 0  # returns once the run has ended
    assert_stopped_cleanly(home)
    again = cli(home, "runs", "stop", run_id)
    assert again.returncode == 2 and "is not running (status: stopped)" in again.stderr


def test_a_second_request_ends_the_run_at_once(home, tmp_path):
    proc = start(home, "--spec", str(tmp_path / "run.toml"))
    wait_for_steps(home, 2, alive=lambda: proc.poll() is None)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)]
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    row = run_row(home)
    assert (row["status"], row["error"]) == ("stopped", "stopped at once by a second stop request, without saving")
    assert events(home)[-1]["type"] == "step"  # no time was taken to save


def test_a_killed_run_shows_as_crashed(home, tmp_path):
    out = cli(home, "run", "--detach", "--spec", str(tmp_path / "run.toml"))
    run_id = out.stdout.strip()
    wait_for_steps(home, 2)
    supervisor = psutil.Process(_pid(home, run_id))
    everything = [supervisor, *supervisor.children(recursive=True)]
    for process in everything:  # as the OOM killer or a reboot would
        process.kill()
    psutil.wait_procs(everything, timeout=10)
    row = run_row(home)
    assert row["status"] == "crashed" and "without recording an end" in row["error"]
    shown = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert shown["status"] == "crashed"


def test_training_outliving_its_supervisor_stops_itself(home, tmp_path):
    out = cli(home, "run", "--detach", "--spec", str(tmp_path / "run.toml"))
    run_id = out.stdout.strip()
    wait_for_steps(home, 2)
    supervisor = psutil.Process(_pid(home, run_id))
    training = supervisor.children(recursive=True)
    supervisor.kill()
    _, alive = psutil.wait_procs(training, timeout=60)
    assert not alive
    row = run_row(home)
    assert row["status"] == "stopped"
    assert events(home)[-1]["reason"] == "the supervising loratui process died"


def _pid(home: Path, run_id: str) -> int:
    from loratui.db.library import open_db

    return open_db(home / "library.db").execute("SELECT pid FROM runs WHERE id = ?", [run_id]).fetchone()[0]
