"""Every registered task through every face: each test gets a fresh LORATUI_HOME holding a task's two trained
adapters (registry_runs.py trains them once per session)."""

import fcntl
import json
import os
from pathlib import Path

import pytest
from homes import inline, share_builtins
from registry_runs import train_all


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """{"home": the home the runs trained in (read it, never write), "adapters": {task: [{"path", "run"}]}}."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "faces"  # one per session
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "trained.json"
        if not done.exists():
            done.write_text(json.dumps(train_all(root)))
        return json.loads(done.read_text())


@pytest.fixture
def task_home(trained, tmp_path, monkeypatch):
    """A fresh LORATUI_HOME (the built-ins shared) holding a task's two trained adapters, named TASK-a and TASK-b;
    call it with the task."""

    def make(task: str) -> Path:
        home = share_builtins(tmp_path / "home", Path(trained["home"]))
        monkeypatch.setenv("LORATUI_HOME", str(home))
        for adapter, name in zip(trained["adapters"][task], ("a", "b"), strict=True):
            out = inline(home, "library", "import", adapter["path"], "--name", f"{task}-{name}")
            assert out.returncode == 0, out.stderr
        return home

    return make
