"""[train] compile = true: the trained modules run through torch.compile, train as they do uncompiled, and what
is saved (checkpoints, the adapter) is the uncompiled modules' state: a checkpoint resumes without compile and
the adapter loads with stock diffusers or peft.

Dynamo compiles with its "eager" backend here: the graphs are captured, guarded and run as a compiled module
is, without inductor's C++ code generation, which takes minutes on a small CPU (bench/train_throughput.py
measures inductor)."""

import functools
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

T2I = """
name = "compiled"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
batch_size = 2
max_steps = 3
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 2
cache = false
compile = {compile}
"""
LM = """
name = "compiled-lm"
task = "causal-lm"
[model]
pretrained = "builtin:tiny-llama"
[data]
source = "builtin:tiny-instruct"
template = "alpaca"
max_length = 64
[lora]
target_modules = "all-linear"
[train]
batch_size = 4
max_steps = 3
learning_rate = 1e-2
log_every_steps = 1
checkpointing_steps = 2
compile = {compile}
"""


@pytest.fixture
def compiled(builtin_home):
    """torch.compile with dynamo's eager backend, and dynamo's counters from zero."""
    import torch
    from torch._dynamo.utils import counters

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(builtin_home))
        patch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
        torch._dynamo.reset()
        counters.clear()
        yield counters
        torch._dynamo.reset()


def train(folder: Path, template: str, compile_: bool, *resume: str) -> dict[int, float]:
    """Run the engine in this process; the losses by step."""
    from engine.events import read_events
    from engine.rundir import RunDir
    from engine.spec import parse_toml
    from engine.train import main

    run = RunDir(folder).create(parse_toml(template.format(compile=str(compile_).lower())).to_toml())
    code = main([str(run.path), *resume])
    events = read_events(run.events)
    assert code == 0, events[-1]
    return {e["step"]: e["loss"] for e in events if e["type"] == "step"}


def resumed_without_compile(tmp_path: Path, template: str, counters) -> tuple[Path, dict, Path, dict]:
    """A compiled run of 3 steps, and an uncompiled one resumed from its step-2 checkpoint: (folder, losses)
    of each. The resumed run's step 3 is the compiled run's only if the checkpoint held the trained weights."""
    compiled = train(tmp_path / "compiled", template, True)
    assert counters["stats"]["unique_graphs"] >= 1, "compile = true compiled nothing"
    checkpoint = tmp_path / "compiled" / "checkpoints" / "checkpoint-000002"
    resumed = train(tmp_path / "resumed", template, False, "--resume", str(checkpoint))
    assert sorted(compiled) == [1, 2, 3] and sorted(resumed) == [3]
    assert resumed[3] == pytest.approx(compiled[3], abs=1e-4)
    return tmp_path / "compiled", compiled, tmp_path / "resumed", resumed


def test_a_compiled_text_to_image_run_checkpoints_resumes_and_saves_a_stock_adapter(compiled, tmp_path):
    import torch
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    from engine import builtin

    folder, _, resumed, _ = resumed_without_compile(tmp_path, T2I, compiled)
    adapter = load_file(folder / "pytorch_lora_weights.safetensors")
    assert adapter and not any("_orig_mod" in key for key in adapter)
    assert load_file(resumed / "pytorch_lora_weights.safetensors").keys() == adapter.keys()
    pipe = StableDiffusionPipeline.from_pretrained(builtin.resolve("builtin:tiny-sd"), safety_checker=None)
    pipe.load_lora_weights(folder, adapter_name="trained")
    loaded = get_peft_model_state_dict(pipe.unet, adapter_name="trained")
    assert {f"unet.{key}" for key in loaded} == adapter.keys()
    assert all(torch.equal(value, adapter[f"unet.{key}"]) for key, value in loaded.items())


def test_a_compiled_causal_lm_run_checkpoints_resumes_and_saves_a_stock_adapter(compiled, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from engine import builtin

    folder, _, _, _ = resumed_without_compile(tmp_path, LM, compiled)
    checkpoint = load_file(folder / "checkpoints" / "checkpoint-000002" / "lora.safetensors")
    assert checkpoint and not any("_orig_mod" in key for key in checkpoint)
    base = AutoModelForCausalLM.from_pretrained(builtin.resolve("builtin:tiny-llama"))
    model = PeftModel.from_pretrained(base, folder)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    # Examples of different lengths: dynamo makes the length dynamic rather than compiling for each.
    assert compiled["stats"]["unique_graphs"] <= 4
