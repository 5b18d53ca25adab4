"""The headless face for every registered task: spec new and validate, the run-settings estimate, `loratui gen` with
the input the task is tried on, combine, merge, export in each format the task offers and import of that export."""

import json
import shutil

import pytest
from homes import inline
from registry_runs import TASKS

from engine.tasks import registry

pytestmark = pytest.mark.slow


def _show(home, ref: str) -> dict:
    out = inline(home, "library", "show", ref, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("task", TASKS)
def test_spec_new_validates_and_is_estimated(task, tmp_path):
    from engine.spec import validate
    from engine.spec_template import template_values
    from loratui.browse.estimate import estimate

    out = inline(tmp_path, "spec", "new", "--task", task)
    assert out.returncode == 0, out.stderr
    (tmp_path / "run.toml").write_text(out.stdout)
    checked = inline(tmp_path, "spec", "validate", str(tmp_path / "run.toml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = estimate(validate(template_values(task)), {"train": 100})
    assert result.trainable_params > 0 and result.base_params > result.trainable_params
    assert result.memory_bytes > result.base_params * 2 and result.steps > 0


def _try_args(task: str, home) -> list[str]:
    """The input `gen` takes for the task, as its try form names it."""
    form = registry.task(task).adapters.try_form
    if form.kind == "segment":
        from engine import builtin

        image = tmp = home / "shape.png"
        source = next((builtin.path("builtin:shapes-masks") / "test" / "images").glob("*.png"))
        shutil.copyfile(source, tmp)
        return [form.flag, str(image)]
    text = {"image": "a red circle", "text": "Describe a red circle.", "classify": "the food was delightful"}
    return [form.flag, text[form.kind]] + (["--steps", "2"] if form.kind == "image" else [])


@pytest.mark.parametrize("task", TASKS)
def test_gen_tries_the_adapter_on_its_tasks_input(task, task_home):
    home = task_home(task)
    out = inline(home, "gen", "--adapter", f"{task}-a", *_try_args(task, home), "--json")
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    kind = registry.task(task).adapters.try_form.kind
    if kind in ("image", "segment"):
        assert record["path"].endswith(".png") and (home / record["path"]).is_file()
    else:
        assert record["output_text"]
    if kind == "classify":
        assert record["output_text"].count(" ") >= 3  # every class with its probability


@pytest.mark.parametrize("task", TASKS)
def test_combine_gives_an_adapter_of_the_same_task(task, task_home):
    """Adapters with heads (or grown embeddings) of their own combine only when those agree
    (tests/engine/test_combine_heads.py); two trained apart are refused in one line that names the module."""
    home = task_home(task)
    out = inline(home, "combine", f"{task}-a", f"{task}-b", "--name", "both", "--method", "linear",
                 "--weights", "0.5", "0.5")
    saved = (_show(home, f"{task}-a")["metadata"].get("adapter_config") or {}).get("modules_to_save")
    if registry.task(task).adapters.own_head or saved:
        assert out.returncode == 2 and "which they train in full" in out.stderr
        assert inline(home, "library", "show", "both").returncode != 0
        return
    assert out.returncode == 0, out.stderr
    combined = _show(home, "both")
    assert (combined["task"], combined["family"]) == (_show(home, f"{task}-a")["task"], _show(home, f"{task}-a")["family"])


@pytest.mark.parametrize("task", TASKS)
def test_merge_writes_a_whole_model(task, task_home, tmp_path):
    home = task_home(task)
    base = _show(home, f"{task}-a")["base_model"]
    out = inline(home, "merge", base, "--adapter", f"{task}-a", "--out", str(tmp_path / "merged"))
    assert out.returncode == 0, out.stderr
    files = {p.name for p in (tmp_path / "merged").iterdir()}
    assert files & {"model_index.json", "config.json"}


@pytest.mark.parametrize("task", [t for t in TASKS if registry.task(t).adapters.format == "peft"])
def test_a_peft_adapter_holds_each_tensor_once(task, trained):
    """Whole modules under the one name PEFT loads (`.weight`), never peft's wrapper copies, which stock loading
    reports as unexpected keys."""
    from safetensors import safe_open

    for adapter in trained["adapters"][task]:
        with safe_open(f"{adapter['path']}/adapter_model.safetensors", "np") as weights:
            assert not [k for k in weights.keys() if ".original_module." in k or ".modules_to_save." in k]


EXPORTS = [(task, fmt) for task in TASKS for fmt in registry.task(task).adapters.export]


@pytest.mark.parametrize(("task", "fmt"), EXPORTS)
def test_export_in_each_offered_format_imports_back(task, fmt, task_home, tmp_path):
    home = task_home(task)
    out = inline(home, "library", "export", f"{task}-a", "--format", fmt, "--out", str(tmp_path / fmt))
    assert out.returncode == 0, out.stderr
    written = out.stdout.strip().split()[-1]
    back = inline(home, "library", "import", str(tmp_path / fmt), "--name", f"back-{fmt}")
    assert back.returncode == 0, back.stderr + written
    entry = json.loads(inline(home, "library", "ls", "--json").stdout)
    tasks = {row["task"] for row in entry}
    assert tasks == {task}


@pytest.mark.parametrize("task", TASKS)
def test_export_refuses_a_format_the_task_lacks(task, task_home, tmp_path):
    offered = registry.task(task).adapters.export
    others = sorted({f for t in registry.tasks() for f in t.adapters.export} - set(offered))
    if not others:
        pytest.skip(f"{task} offers every format")
    home = task_home(task)
    out = inline(home, "library", "export", f"{task}-a", "--format", others[0], "--out", str(tmp_path / "x"))
    assert out.returncode == 2 and f"exports as {', '.join(offered)}" in out.stderr
    assert not (tmp_path / "x").exists()
