"""Classification and segmentation adapters in the library, as a user meets them after `loratui run`: registered
with their task, tried with `gen --text` / `gen --image`, checked against their base, and merged into a full
model the stock Auto class loads (combining them only when heads agree: tests/engine/test_combine_heads.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from homes import inline, share_builtins

pytestmark = pytest.mark.slow

TRAIN = "\n[train]\nmax_steps = 5\ncheckpointing_steps = 0\nlog_every_steps = 5\nseed = {seed}\n"
SPECS = {
    "cls-a": ('name = "cls-a"\ntask = "sequence-classification"\n[model]\npretrained = "builtin:tiny-bert"\n'
              '[data]\nsource = "builtin:tiny-reviews"', 1),
    "seg": ('name = "seg"\ntask = "semantic-segmentation"\n[model]\npretrained = "builtin:tiny-segformer"\n'
            '[data]\nsource = "builtin:shapes-masks"', 1),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory, builtin_home) -> Path:
    """Both runs started together, as `loratui run` in processes of their own (their start-up shares the cores)."""
    root = tmp_path_factory.mktemp("task-adapters")
    home = share_builtins(root / "home", builtin_home)
    with pytest.MonkeyPatch.context() as patch:  # built here once, not by two runs racing
        patch.setenv("LORATUI_HOME", str(home))
        from engine import builtin

        for ref in ("builtin:tiny-bert", "builtin:tiny-reviews", "builtin:tiny-segformer", "builtin:shapes-masks"):
            builtin.path(ref)
    procs = {}
    for name, (spec, seed) in SPECS.items():
        path = root / f"{name}.toml"
        path.write_text(spec + TRAIN.format(seed=seed))
        procs[name] = subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(path)],
                                       env={**os.environ, "LORATUI_HOME": str(home)}, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        run_id = out.strip().splitlines()[-1]
        adapter, file = err.strip().splitlines()[-2:]  # the last lines say where the adapter went
        assert re.fullmatch(rf"adapter: {re.escape(run_id)} \(library id \d+\)", adapter.strip()), err[-500:]
        assert file.strip().startswith("file: ") and Path(file.strip().removeprefix("file: ")).exists(), err[-500:]
        assert inline(home, "library", "edit", run_id, "--name", name).returncode == 0
    return home


def test_registered_with_their_task_and_fit_their_base(home):
    rows = {row["name"]: row for row in json.loads(inline(home, "library", "ls", "--json").stdout)}
    assert {name: (row["task"], row["family"], row["format"]) for name, row in rows.items()} == {
        "cls-a": ("sequence-classification", "text", "peft"), "seg": ("semantic-segmentation", "vision", "peft")}
    for name, base in (("cls-a", "builtin:tiny-bert"), ("seg", "builtin:tiny-segformer")):
        out = inline(home, "library", "check", name)
        assert out.returncode == 0 and f"fits {base}" in out.stdout, out.stdout + out.stderr
    out = inline(home, "library", "check", "cls-a", "--base", "builtin:tiny-segformer")
    assert out.returncode == 1 and "does NOT fit" in out.stdout


def test_gen_classifies_a_text_and_segments_an_image(home, tmp_path):
    out = inline(home, "gen", "--adapter", "cls-a", "--text", "the food was delightful")
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    assert sorted(name for name, _ in lines) == ["negative", "positive"]
    assert abs(sum(float(p) for _, p in lines) - 1) < 1e-4

    from PIL import Image

    image = tmp_path / "shape.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(image)
    out = inline(home, "gen", "--adapter", "seg", "--image", str(image))
    assert out.returncode == 0, out.stderr
    mask = tmp_path / "shape.mask.png"
    assert out.stdout.startswith(str(mask)) and Image.open(mask).size == (64, 64)

    wrong = inline(home, "gen", "--adapter", "seg", "--text", "hello")
    assert wrong.returncode == 2 and "is a semantic-segmentation adapter: give --image" in wrong.stderr


def test_merged_into_a_full_model_the_stock_class_loads(home, tmp_path):
    import torch
    from transformers import AutoModelForSemanticSegmentation, AutoModelForSequenceClassification

    from engine.tasks.sequence_classification.predict import load

    out = inline(home, "merge", "builtin:tiny-bert", "--adapter", "cls-a", "--out", str(tmp_path / "cls"))
    assert out.returncode == 0, out.stderr
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    entry = json.loads(inline(home, "library", "show", "cls-a", "--json").stdout)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        adapted, tokenizer = load("builtin:tiny-bert", entry["path"])
    batch = tokenizer(["the food was delightful", "a dull and tiring day"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, adapted.eval()(**batch).logits, atol=1e-5)

    out = inline(home, "merge", "builtin:tiny-segformer", "--adapter", "seg", "--out", str(tmp_path / "seg"))
    assert out.returncode == 0, out.stderr
    assert AutoModelForSemanticSegmentation.from_pretrained(tmp_path / "seg").config.num_labels == 4
    other = tmp_path / "other"  # a second classification adapter: cls-a's files with one weight changed
    other.mkdir()
    for file in Path(entry["path"]).iterdir():
        (other / file.name).write_bytes(file.read_bytes())
    weights = bytearray((other / "adapter_model.safetensors").read_bytes())
    weights[-1] ^= 1
    (other / "adapter_model.safetensors").write_bytes(bytes(weights))
    assert inline(home, "library", "import", str(other), "--name", "cls-b").returncode == 0
    together = inline(home, "merge", "builtin:tiny-bert", "--adapter", "cls-a", "--adapter", "cls-b",
                   "--out", str(tmp_path / "both"))
    assert together.returncode == 2 and "trains a head of its own: merge it alone" in together.stderr
    assert not (tmp_path / "both").exists()
