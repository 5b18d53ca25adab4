"""causal-lm under FSDP (engine.fsdp): on 2 CPU processes sharded by FSDP2, the adapter saved through
Accelerate's gathering is whole (stock PeftModel.from_pretrained loads it, its weights the trained ones) and the
checkpoint state loads back so that the next step repeats exactly; in one process, the gathering functions give
what the unsharded path saves."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from homes import share_builtins
from safetensors.torch import load_file

from engine import builtin, fsdp
from engine.data import load_rows
from engine.spec import load_spec
from engine.tasks import load_task

SPEC = """
name = "lm-fsdp"
task = "causal-lm"
[model]
pretrained = "builtin:tiny-llama"
[data]
source = "builtin:tiny-chat"
template = "chatml"  # adds two tokens: embed_tokens and lm_head train in full, peft names them twice
max_length = 96
[lora]
target_modules = ["q_proj", "v_proj"]
[train]
learning_rate = 1e-2
max_steps = 3
[validation]
prompts = ["Describe a red circle."]
max_new_tokens = 4
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory, builtin_home):
    home = share_builtins(tmp_path_factory.mktemp("fsdp") / "home", builtin_home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        for ref in ("builtin:tiny-llama", "builtin:tiny-chat"):
            builtin.path(ref)
        yield home


@pytest.fixture
def spec(home, tmp_path, monkeypatch):
    monkeypatch.setenv("LORATUI_HOME", str(home))
    (tmp_path / "spec.toml").write_text(SPEC)
    return tmp_path / "spec.toml"


@pytest.mark.slow
def test_two_sharded_processes_save_a_whole_adapter_and_a_checkpoint_that_resumes(spec, home, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    env = {**os.environ, "LORATUI_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    worker = Path(__file__).with_name("fsdp_two_ranks.py")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(worker), str(spec), str(out)], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    local, whole = result["sharded"]
    assert local[0] * 2 == whole[0]  # each process held half of every tensor
    assert result["samples"] == ["step-000002-0.txt"] and (out / "samples" / "step-000002-0.txt").is_file()
    assert result["optimizer_keys"][0].endswith(".weight")  # keyed by parameter name, whatever the sharding
    assert result["lora_restored"] and result["optimizer_restored"]
    assert result["step_moved"] and result["step_repeated"]

    weights = load_file(out / "weights.safetensors")
    base = AutoModelForCausalLM.from_pretrained(builtin.resolve("builtin:tiny-llama"))
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(out / "adapter")))
    loaded = PeftModel.from_pretrained(base, out / "adapter")
    params = dict(loaded.named_parameters())
    assert any("modules_to_save" in name for name in weights)
    assert all(torch.equal(params[name], value) for name, value in weights.items())
    saved = load_file(out / "lora.safetensors")
    assert saved.keys() == load_file(out / "adapter" / "adapter_model.safetensors").keys()


def test_gathering_in_one_process_gives_the_unsharded_state(spec):
    from accelerate import Accelerator

    spec = load_spec(spec)
    accelerator = Accelerator(cpu=True)
    task = load_task(spec, accelerator, load_rows(spec.data, 0), log=lambda level, message: None)
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-2)
    model, optimizer = accelerator.prepare(*task.trainable_modules(), optimizer)
    task.use_prepared([model])
    accelerator.backward(task.loss(task.collate([task.dataset[(0, 0)], task.dataset[(0, 1)]]), None))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)  # as at a resume: the loaded optimizer has seen no gradient yet
    assert not fsdp.sharded(accelerator)

    plain, gathered = task.lora_state(), fsdp.lora_state_all_ranks(task)
    assert plain.keys() == gathered.keys() and all(torch.equal(plain[k], gathered[k]) for k in plain)
    state = fsdp.optimizer_state_all_ranks(task, optimizer)
    fresh = torch.optim.AdamW(task.parameters(), lr=1e-2)
    fsdp.load_optimizer_state_all_ranks(task, fresh, state)
    before, after = optimizer.state_dict(), fresh.state_dict()
    # torch.distributed.checkpoint hands betas back as a list, which AdamW reads as it reads the tuple.
    assert [{**g, "betas": tuple(g["betas"])} for g in after["param_groups"]] == before["param_groups"]
    assert all(torch.equal(before["state"][i][k], after["state"][i][k]) for i in before["state"]
               for k in before["state"][i])
