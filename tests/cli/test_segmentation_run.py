"""A semantic-segmentation run end to end through `loratui run` (accelerate launch) on the built-ins: mean IoU on
the test split rises well above the random model's, and the adapter it leaves, loaded as anyone would (stock
transformers + PeftModel.from_pretrained), scores what the run's final evaluation reported."""

import os
import subprocess
import sys

import numpy as np
import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

SPEC = """
name = "segmented"
task = "semantic-segmentation"
[model]
pretrained = "builtin:tiny-segformer"
[data]
source = "builtin:shapes-masks"
[lora]
rank = 8
alpha = 16
[train]
batch_size = 16
max_steps = 100
learning_rate = 1e-2
random_flip = true
log_every_steps = 50
checkpointing_steps = 0
[eval]
split = "test"
"""


def test_a_run_raises_mean_iou_and_its_adapter_scores_the_same_loaded_stock(tmp_path, builtin_home):
    import torch
    from peft import PeftModel
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    from engine import builtin
    from engine.data import load_rows
    from engine.events import read_events
    from engine.spec import load_spec
    from engine.tasks.semantic_segmentation.trainer import eval_areas, segmentation_metrics

    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "run.toml").write_text(SPEC)
    # One thread: on two cores shared with other processes, two threads' waiting costs 5x (measured).
    env = {**os.environ, "LORATUI_HOME": str(home), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(tmp_path / "run.toml")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = home / "runs" / out.stdout.strip().splitlines()[-1]
    evals = [e for e in read_events(folder / "events.jsonl") if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [0, 100]
    base, final = evals[0]["metrics"], evals[-1]["metrics"]
    assert final["mean_iou"] > base["mean_iou"] + 0.15, (base, final)
    assert final["pixel_accuracy"] > base["pixel_accuracy"] and final["eval_loss"] < base["eval_loss"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        spec = load_spec(tmp_path / "run.toml")
        base_folder = builtin.path(spec.model.pretrained)
        test = load_rows(spec.data.model_copy(update={"split": "test"}), spec.train.seed)
    processor = AutoImageProcessor.from_pretrained(base_folder)
    model = PeftModel.from_pretrained(AutoModelForSemanticSegmentation.from_pretrained(base_folder), folder).eval()
    inputs = processor(images=list(test["image"]), segmentation_maps=[np.asarray(m) for m in test["mask"]],
                       return_tensors="pt")
    with torch.no_grad():
        logits = model(pixel_values=inputs["pixel_values"]).logits
    labels = ["background", "circle", "square", "triangle"]
    stock = segmentation_metrics(eval_areas(logits, inputs["labels"], spec.data.ignore_index), labels)
    assert stock == pytest.approx(final, abs=1e-5)
