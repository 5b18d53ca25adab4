"""One rank of test_fsdp's 2-process run (torchrun): causal-lm sharded by FSDP2 on CPU, trained two steps, its
samples, adapter and checkpoint state saved through engine.fsdp, then loaded back after a further step, which then repeats exactly.

`python fsdp_two_ranks.py SPEC OUT`; rank 0 writes OUT/result.json and the files the test compares.
"""

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import PartialState
from accelerate.utils import DistributedType, set_seed
from safetensors.torch import load_file, save_file

from engine import fsdp
from engine.data import load_rows
from engine.spec import load_spec
from engine.tasks import load_task


def fsdp_on_cpu() -> Accelerator:
    """An Accelerator that shards with FSDP2 over gloo. accelerate turns only GPU data parallelism into FSDP
    (AcceleratorState leaves MULTI_CPU as it is), though torch's FSDP2 shards on CPU; so this test sets the type
    itself, in both of accelerate's shared states (AcceleratorState copies PartialState's over its own)."""
    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap")
    accelerator = Accelerator(cpu=True, fsdp_plugin=plugin)
    accelerator.state.fsdp_plugin = plugin
    accelerator.state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return accelerator


def main(spec_path: str, out: str) -> None:
    out = Path(out)
    spec = load_spec(spec_path)
    accelerator = fsdp_on_cpu()
    main_process = accelerator.is_main_process
    set_seed(spec.train.seed)  # every rank starts from the same LoRA: FSDP2 shards what each holds
    task = load_task(spec, accelerator, load_rows(spec.data, spec.train.seed), log=lambda level, message: None)
    optimizer = torch.optim.AdamW(task.parameters(), lr=spec.train.learning_rate)
    model, optimizer = accelerator.prepare(*task.trainable_modules(), optimizer)
    task.use_prepared([model])
    rank = accelerator.process_index

    def step(number: int) -> float:
        items = [task.dataset[(0, (number * 4 + rank * 2 + i) % len(task.dataset))] for i in range(2)]
        loss = task.loss(task.collate(items), None)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return accelerator.reduce(loss.detach(), reduction="mean").item()

    step(0)
    step(1)
    samples = task.sample(2, out / "samples")
    task.save_adapter(out / "adapter", {"loratui.steps": "2"})
    lora = fsdp.lora_state_all_ranks(task)
    optim = fsdp.optimizer_state_all_ranks(task, optimizer)
    # The weights as they are, gathered another way: each trainable parameter's DTensor made whole.
    trainable = {name: p for name, p in task.model.named_parameters() if p.requires_grad}
    weights = {name: p.full_tensor() for name, p in trainable.items()}
    if main_process:
        save_file(lora, out / "lora.safetensors")
        torch.save(optim, out / "optimizer.pt")
        save_file(weights, out / "weights.safetensors")
    accelerator.wait_for_everyone()

    step(2)
    stepped = fsdp.lora_state_all_ranks(task)
    task.load_lora_state(load_file(out / "lora.safetensors"))  # every process reads the file, as checkpoint.load does
    fsdp.load_optimizer_state_all_ranks(task, optimizer,
                                        torch.load(out / "optimizer.pt", weights_only=True) if main_process else {})
    lora_again = fsdp.lora_state_all_ranks(task)
    optim_again = fsdp.optimizer_state_all_ranks(task, optimizer)
    step(2)  # again from the restored weights and Adam moments: the same update
    stepped_again = fsdp.lora_state_all_ranks(task)
    if main_process:
        name, param = next(iter(trainable.items()))
        result = {"sharded": [list(param.to_local().shape), list(param.shape)],
                  "samples": [s.path.name for s in samples],
                  "lora_restored": lora_again.keys() == lora.keys()
                  and all(torch.equal(lora_again[k], lora[k]) for k in lora),
                  "optimizer_restored": _same(optim_again, optim), "optimizer_keys": sorted(optim["state"])[:1],
                  "step_repeated": _same(stepped_again, stepped), "step_moved": not _same(stepped, lora)}
        (out / "result.json").write_text(json.dumps(result))
    accelerator.wait_for_everyone()
    accelerator.end_training()


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


if __name__ == "__main__":
    main(*sys.argv[1:])
