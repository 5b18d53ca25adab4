"""What a spec leaves out follows the model, and what it names stays its own: a minimal causal-lm spec on the
built-in model (no max_length) validates, queues and trains with the model's positions, saying so, while a
max_length the user set too long is refused; a classifier on a decoder targets the decoder's attention layers
unless told otherwise; `name` names the run and its adapter wherever `[output] dir` puts the folder."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from homes import inline, share_builtins

NOTE = "data.max_length: 256 (the model's positions; the default 1024 is more)"


def minimal(tmp_path: Path, name: str = "my-lm", extra: str = "") -> Path:
    """builtin:tiny-llama (256 positions) on a jsonl of texts, nothing else set but the length of the run."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"a {c} circle is round"}) + "\n"
                             for c in ("red", "blue", "green", "yellow") * 4))
    spec = tmp_path / f"{name}.toml"
    spec.write_text(f'name = "{name}"\ntask = "causal-lm"\n[model]\npretrained = "builtin:tiny-llama"\n'
                    f'[data]\nsource = "{texts}"\n[train]\nmax_steps = 2\nbatch_size = 4\ncheckpointing_steps = 0\n'
                    + extra)
    return spec


@pytest.fixture
def home(tmp_path, builtin_home):
    return share_builtins(tmp_path / "home", builtin_home)


def test_a_default_max_length_follows_the_model_and_one_the_user_set_must_fit(home, tmp_path):
    out = inline(home, "spec", "validate", str(minimal(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert f"note: {NOTE}" in out.stderr and "is valid (causal-lm, llm model, 16 rows" in out.stdout
    too_long = minimal(tmp_path, "too-long", extra="")
    too_long.write_text(too_long.read_text().replace("[train]", "max_length = 1024\n[train]"))
    out = inline(home, "spec", "validate", str(too_long))
    assert out.returncode == 2
    assert ("data.max_length: 1024 is more than the 256 positions of builtin:tiny-llama (allowed: 1 to 256)"
            in out.stderr), out.stderr
    assert NOTE not in out.stderr


def test_a_queued_spec_keeps_what_it_left_to_the_model(home, tmp_path, monkeypatch):
    from engine.spec import parse_toml
    from loratui.db.library import open_db
    from loratui.runs.launch import plan_run

    assert inline(home, "queue", "add", str(minimal(tmp_path))).returncode == 0
    monkeypatch.setenv("LORATUI_HOME", str(home))
    db = open_db()
    (job,) = db.query("SELECT spec, spec_path FROM queue")
    assert "max_length" not in job["spec"]  # stored as written, so the default still follows the model
    plan = plan_run(db, spec=parse_toml(job["spec"], job["spec_path"]))
    assert NOTE in plan.notes and plan.spec.data.max_length == 256


def test_a_classifier_on_a_decoder_targets_its_attention_layers_unless_told_otherwise(home, tmp_path, monkeypatch):
    from loratui.db.library import open_db
    from loratui.runs.launch import plan_run

    spec = tmp_path / "classify.toml"
    body = ('name = "classify"\ntask = "sequence-classification"\n[model]\npretrained = "builtin:tiny-llama"\n'
            '[data]\nsource = "builtin:tiny-reviews"\nsplit = "train[:32]"\n[train]\nmax_steps = 2\n')
    spec.write_text(body)
    note = ("lora.target_modules: q_proj, v_proj (the attention layers of builtin:tiny-llama; the default query, "
            "value is an encoder's)")
    out = inline(home, "spec", "validate", str(spec))
    assert out.returncode == 0 and f"note: {note}" in out.stderr, out.stderr
    monkeypatch.setenv("LORATUI_HOME", str(home))
    plan = plan_run(open_db(), str(spec))
    assert plan.spec.lora.target_modules == ["q_proj", "v_proj"] and note in plan.notes
    assert tomllib.loads(plan.spec.to_toml())["lora"]["target_modules"] == ["q_proj", "v_proj"]  # as the run stores it
    # Beside another problem, the model's own layers are still what the default is judged by.
    spec.write_text(body.replace("max_steps = 2", "max_steps = 2\nbatch_size = 0"))
    out = inline(home, "spec", "validate", str(spec))
    assert out.returncode == 2 and "train.batch_size" in out.stderr and "target_modules" not in out.stderr, out.stderr
    # Targets the user named are theirs: wrong ones are refused, not replaced.
    spec.write_text(body + '[lora]\ntarget_modules = ["query", "value"]\n')
    out = inline(home, "spec", "validate", str(spec))
    assert out.returncode == 2 and "lora.target_modules: 'query', 'value' match no layer" in out.stderr, out.stderr


@pytest.mark.slow
def test_a_minimal_spec_trains_with_the_models_positions_under_its_own_name(home, tmp_path):
    folder = tmp_path / "runs" / "out"
    spec = minimal(tmp_path, extra=f'[output]\ndir = "{folder}"\n')
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(spec)], capture_output=True, text=True,
                         env={**os.environ, "LORATUI_HOME": str(home), "OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"note: {NOTE}" in out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    # The name names the run and its adapter; [output] dir only says where the folder goes.
    assert run_id.startswith("my-lm-"), run_id
    (row,) = json.loads(inline(home, "runs", "ls", "--json").stdout)
    assert (row["id"], row["name"], Path(row["dir"])) == (run_id, "my-lm", folder)
    (adapter,) = json.loads(inline(home, "library", "ls", "--json").stdout)
    assert adapter["name"] == run_id
    # The run trained with what it took, as its stored spec and its log say.
    assert tomllib.loads((folder / "spec.toml").read_text())["data"]["max_length"] == 256
    assert f"note: {NOTE}" in (folder / "run.log").read_text()
    assert (folder / "run_id").read_text() == run_id
