"""Two real adapters per registered task, trained once per test session from the task's own `spec new` template
(its built-ins) and shared by every face test and every xdist worker. A task added to the registry is trained
(and so tested in every face) with no list to update."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import inline

from engine.tasks import registry

TASKS = [task.name for task in registry.tasks()]
SEEDS = (1, 2)  # two adapters per task, for combine
STEPS = 2


def spec_values(task: str, seed: int) -> dict:
    """The task's template, cut to a few steps."""
    from engine.spec_template import template_values

    values = template_values(task)
    values["name"] = f"{task}-s{seed}"
    values["train"].update(max_steps=STEPS, seed=seed, checkpointing_steps=0, num_epochs=0)
    return values


def train_all(root: Path) -> dict[str, list[dict]]:
    from engine.spec_template import commented_toml

    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LORATUI_HOME": str(home)}
    with pytest.MonkeyPatch.context() as patch:  # each built-in built once, not by runs racing
        patch.setenv("LORATUI_HOME", str(home))
        from engine import builtin

        for task in TASKS:
            values = spec_values(task, SEEDS[0])
            for ref in (values["model"]["pretrained"], values["data"]["source"]):
                if builtin.is_builtin(ref):
                    builtin.path(ref)
    procs = []
    for task in TASKS:
        for seed in SEEDS:
            spec = root / f"{task}-{seed}.toml"
            spec.write_text(commented_toml(spec_values(task, seed)))
            procs.append((task, subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(spec)], env=env,
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for task, proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{task}: {out[-2000:]}{err[-3000:]}"
    rows = json.loads(inline(home, "library", "ls", "--json").stdout)
    trained = {task: [{"path": row["path"], "run": row["source_run"]} for row in rows if row["task"] == task]
               for task in TASKS}
    assert all(len(found) == len(SEEDS) for found in trained.values()), trained
    return {"home": str(home), "adapters": trained}
