"""A text-to-image adapter file loads whole in a stock pipeline whatever layers it targets: attention layers and
others (feed-forward, the resnets' time projections) in one file, every tensor as trained."""

import pytest

pytestmark = pytest.mark.slow

SPEC = """
name = "mixed-targets"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[lora]
target_modules = ["to_q", "to_out.0", "ff.net.2", "time_emb_proj"]
[train]
resolution = 32
batch_size = 2
max_steps = 2
learning_rate = 1e-2
checkpointing_steps = 0
"""


def test_attention_and_other_layers_load_together_in_a_stock_pipeline(builtin_home, tmp_path, monkeypatch):
    import torch
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    from engine import builtin
    from engine.events import read_events
    from engine.rundir import RunDir
    from engine.spec import parse_toml
    from engine.train import main

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    run = RunDir(tmp_path / "run").create(parse_toml(SPEC).to_toml())
    assert main([str(run.path)]) == 0, read_events(run.events)[-1]
    adapter = load_file(run.path / "pytorch_lora_weights.safetensors")
    assert {key.split(".")[-3] for key in adapter} >= {"to_q", "2", "time_emb_proj"}

    pipe = StableDiffusionPipeline.from_pretrained(builtin.resolve("builtin:tiny-sd"), safety_checker=None)
    pipe.load_lora_weights(run.path, adapter_name="trained")
    loaded = {f"unet.{key}": value for key, value in get_peft_model_state_dict(pipe.unet, adapter_name="trained").items()}
    assert loaded.keys() == adapter.keys()
    assert all(torch.equal(value, adapter[key]) for key, value in loaded.items())
    assert any(value.abs().sum() > 0 for key, value in adapter.items() if ".lora_B." in key)
