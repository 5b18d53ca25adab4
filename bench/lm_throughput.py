"""Causal-LM training throughput on variable-length text: the engine, with and without packing, against a reference
loop written like transformers' "Training in native PyTorch" (a DataLoader padding each batch to its longest
example with DataCollatorForLanguageModeling, the loss over every real token, AdamW, a linear schedule).

    .venv/bin/python bench/lm_throughput.py [--rows 512] [--batch-size 8] [--max-length 512] [--rounds 3]

The model is builtin:tiny-llama with room for 512 positions (a copy whose config says 1024: RoPE learns no
position table). The data are plain texts whose lengths follow a long tail from 16 to max-length tokens, as
instruction sets do: most short, a few long. All three train the same examples (tokenized once, by the engine's
formatting) with the same LoRA, batch size and seed, for two epochs; the second is timed, so start-up and the
first steps' warm-up are left out. Trained tokens per second: every example's tokens once per epoch, divided by
the epoch's time (for the reference that is its real, non-pad tokens). Goals: packing >= 2x the reference,
without packing >= 1.0x. Rounds alternate the order of the three; a ratio is taken within each round and the
median over rounds reported. On a shared machine, OMP_NUM_THREADS=1 keeps the comparison from measuring the
neighbours.
"""

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SEED = 0
WORDS = ("the", "red", "circle", "square", "sits", "on", "left", "a", "big", "blue", "triangle", "glows", "at",
         "top", "small", "green", "spins", "in", "middle", "and", "then", "waits", "by", "river", "tree")


def long_model(folder: Path, positions: int) -> Path:
    """builtin:tiny-llama copied, with room for `positions` tokens."""
    from engine import builtin

    shutil.copytree(builtin.path("builtin:tiny-llama"), folder)
    for name, key in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        values = json.loads((folder / name).read_text())
        values[key] = positions
        (folder / name).write_text(json.dumps(values))
    return folder


def long_tailed_texts(model: Path, rows: int, longest: int) -> list[str]:
    """Texts of 16 to `longest` tokens (EOS included), log-uniformly spread: as many of 16-32 as of 256-512."""
    from engine.tasks.causal_lm import tokenizer

    backend = tokenizer.load(str(model)).backend
    rng = random.Random(SEED)
    texts = []
    for _ in range(rows):
        target = int(math.exp(rng.uniform(math.log(16), math.log(longest)))) - 1  # encode() adds BOS; EOS follows
        words = []
        while len(backend.encode(" ".join(words)).ids) < target:
            words += rng.choices(WORDS, k=max(1, (target - len(backend.encode(" ".join(words)).ids)) // 2))
        while len(backend.encode(" ".join(words)).ids) > target:
            words.pop()
        texts.append(" ".join(words))
    return texts


def spec_toml(args, model: Path, data: Path, packing: bool, steps: int, log_every: int) -> str:
    return f"""
name = "bench"
task = "causal-lm"
[model]
pretrained = "{model}"
[data]
source = "{data}"
format = "text"
max_length = {args.max_length}
packing = {"true" if packing else "false"}
[train]
batch_size = {args.batch_size}
max_steps = {steps}
learning_rate = 1e-3
lr_scheduler = "linear"
log_every_steps = {log_every}
checkpointing_steps = 0
seed = {SEED}
"""


def examples(args, model: Path, data: Path) -> list:
    """The examples every loop trains on, as the engine's formatting makes them."""
    from engine.data import load_rows
    from engine.spec import parse_toml
    from engine.tasks.causal_lm import layout, tokenizer
    from engine.tasks.causal_lm.formatting import Formatter, screen

    spec = parse_toml(spec_toml(args, model, data, False, 1, 1))
    rows = load_rows(spec.data, SEED)
    found, _ = layout.resolve(spec.data, rows.column_names)
    return screen(Formatter(spec.data, found, tokenizer.load(str(model)), str(model)), spec.data, rows).examples


def engine_epoch(args, model: Path, data: Path, packing: bool, steps_per_epoch: int) -> float:
    """Seconds engine.train spends on its second epoch (in this process)."""
    from engine.events import read_events
    from engine.rundir import RunDir
    from engine.spec import parse_toml
    from engine.train import main

    folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    spec = spec_toml(args, model, data, packing, 2 * steps_per_epoch, steps_per_epoch)
    run = RunDir(folder).create(parse_toml(spec).to_toml())
    if main([str(run.path)]) != 0:
        sys.exit(f"engine run failed: {read_events(run.events)[-1]}")
    second = [e for e in read_events(run.events) if e["type"] == "step"][-1]  # the mean over epoch 2's steps
    return second["step_time"] * steps_per_epoch


def reference_epoch(args, model: Path, ids: list[list[int]]) -> float:
    """Seconds the documentation's loop spends on its second epoch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        get_scheduler,
    )

    from engine.tasks.causal_lm.spec import Lora

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model)
    base = AutoModelForCausalLM.from_pretrained(model)
    lora = Lora()
    net = get_peft_model(base, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                                          task_type="CAUSAL_LM"))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)  # pads to the batch's longest
    loader = DataLoader([{"input_ids": row} for row in ids], shuffle=True, batch_size=args.batch_size,
                        collate_fn=collator, generator=torch.Generator().manual_seed(SEED))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=2 * len(loader))
    net.train()
    for _ in range(2):
        start = time.perf_counter()
        for batch in loader:
            loss = net(**batch).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lm-") as scratch:
        tempfile.tempdir = scratch  # run folders, the model copy and the default home: all removed at the end
        measure(args)


def measure(args) -> None:
    from engine.tasks.causal_lm import packing

    os.environ.setdefault("LORATUI_HOME", tempfile.mkdtemp(prefix="bench-home-"))
    scratch = Path(tempfile.gettempdir())
    model = long_model(scratch / "tiny-llama-long", 1024)
    data = scratch / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in long_tailed_texts(model, args.rows,
                                                                                     args.max_length)))
    found = examples(args, model, data)
    lengths = sorted(len(e.ids) for e in found)
    tokens = sum(e.trained() for e in found)  # every token of a text is trained: the reference's real tokens too
    packed_rows = len(packing.plan([len(e.ids) for e in found], args.max_length))
    steps = {"engine, packing": math.ceil(packed_rows / args.batch_size),
             "engine, no packing": math.ceil(len(found) / args.batch_size)}
    configs = {"reference (docs loop)": lambda: reference_epoch(args, model, [e.ids for e in found]),
               "engine, no packing": lambda: engine_epoch(args, model, data, False, steps["engine, no packing"]),
               "engine, packing": lambda: engine_epoch(args, model, data, True, steps["engine, packing"])}
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        for name in list(configs) if round_ % 2 == 0 else list(configs)[::-1]:
            seconds[name].append(configs[name]())
    print(f"tiny-llama, {len(found)} texts of {lengths[0]}-{lengths[-1]} tokens (median {statistics.median(lengths)}, "
          f"{tokens} in all; {packed_rows} packed rows of {args.max_length}), batch {args.batch_size}, {args.rounds} "
          "rounds (the second epoch timed; ratio: median over rounds)")
    reference = seconds["reference (docs loop)"]
    ratios = {}
    for name, times in seconds.items():
        per_round = [r / s for r, s in zip(reference, times, strict=True)]
        ratios[name] = statistics.median(per_round)
        print(f"  {name:<22} {tokens / statistics.median(times):9.0f} trained tokens/s   ratio {ratios[name]:5.2f}"
              f"   (rounds {min(per_round):.2f}-{max(per_round):.2f})")
    packed, plain = ratios["engine, packing"], ratios["engine, no packing"]
    print(f"  goals: packing >= 2.0: {'ok' if packed >= 2.0 else 'MISSED'}; no packing >= 1.0: "
          f"{'ok' if plain >= 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
