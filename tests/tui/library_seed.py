"""A small real library for the Library screen's tests: kohya LoRA files written with numpy (no torch, so
no model is built), registered as the CLI registers them, one trained by a scripted run, one combined; and a
PEFT causal-lm adapter whose run's samples are text."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from loratui.library import adapters, generations
from loratui.runs.ingest import ingest

from .conftest import add_run, script_completions, script_events, write_sample

MODULES = ("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
           "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v")
SD1 = {"ss_base_model_version": "sd_v1", "ss_network_dim": "4", "ss_network_alpha": "2.0",
       "ss_tag_frequency": '{"shapes": {"paper": 12, "cut": 9}}', "modelspec.title": "Paper Cut"}


def kohya_file(path: Path, seed: int, metadata: dict | None = None) -> Path:
    """A kohya/A1111 LoRA (two UNet attention modules, rank 4) whose bytes differ by `seed`."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for module in MODULES:
        tensors[f"lora_unet_{module}.lora_down.weight"] = rng.standard_normal((4, 32)).astype(np.float32)
        tensors[f"lora_unet_{module}.lora_up.weight"] = rng.standard_normal((32, 4)).astype(np.float32)
        tensors[f"lora_unet_{module}.alpha"] = np.array(2.0, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=SD1 if metadata is None else metadata)
    return path


def seed_library(db, folder: Path) -> dict[str, dict]:
    """paper-cut (trained by run `shapes-run`, with loss, samples and a generation), ink-wash (tagged, with a
    trigger word), and ink-paper combined from both; returns the rows by name."""
    run_dir = add_run(db, "shapes-run", status="finished", steps=40, total=40)
    script_events(run_dir, 40, total=40)
    ingest(db, run_dir, "shapes-run")  # metrics and samples, as the supervisor records them
    with db.conn:
        db.conn.execute("UPDATE runs SET status = 'finished' WHERE id = 'shapes-run'")
    paper = adapters.register(db, kohya_file(folder / "paper-cut.safetensors", 1), source_run="shapes-run",
                              base_model="builtin:tiny-sd", tags=["craft"])
    ink = adapters.register(db, kohya_file(folder / "ink-wash.safetensors", 2), tags=["ink", "style"])
    ink = adapters.edit(db, ink["id"], trigger_words=["inkwash"], notes="soft brush strokes")
    mixed = adapters.register(db, kohya_file(folder / "ink-paper.safetensors", 3), name="ink-paper", lineage=[
        {"parent": paper["id"], "weight": 0.6, "method": "linear"},
        {"parent": ink["id"], "weight": 0.4, "method": "linear"}])
    picture = folder / "generation.png"
    write_sample(picture, 3)
    generations.record(db, base_model="builtin:tiny-sd", adapters=[{"id": paper["id"], "name": paper["name"],
                                                                     "weight": 0.8}],
                       prompt="a red circle", seed=1, path=str(picture))
    return {row["name"]: row for row in (paper, ink, mixed)}


def peft_llm_folder(folder: Path) -> Path:
    """A PEFT causal-lm adapter for tiny-llama (q_proj and v_proj of one layer, rank 4), as peft saves one."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8,
              "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "builtin:tiny-llama"}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(4)
    tensors = {}
    for module in ("q_proj", "v_proj"):
        prefix = f"base_model.model.model.layers.0.self_attn.{module}"
        tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((4, 64)).astype(np.float32)
        tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((64, 4)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def seed_chat_adapter(db, folder: Path, answers: dict[int, list[str]]) -> dict:
    """chat-lora, trained by run `chat-run` whose validation prompts were answered `answers` {step: [text]}."""
    run_dir = add_run(db, "chat-run", status="finished", steps=10, total=10)
    seq = script_events(run_dir, 10, total=10, sample=False)
    for step, texts in answers.items():
        seq = script_completions(run_dir, seq, step, texts)
    ingest(db, run_dir, "chat-run")
    return adapters.register(db, peft_llm_folder(folder / "chat-lora"), name="chat-lora", source_run="chat-run",
                             base_model="builtin:tiny-llama")
