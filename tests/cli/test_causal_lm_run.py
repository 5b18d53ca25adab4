"""causal-lm end to end through `loratui run` (accelerate launch), one run per data format on the built-ins: the
adapter loads with stock transformers + PeftModel.from_pretrained (the tokenizer saved beside it, holding the
template trained with), and its loss on the training examples, computed by stock code, is clearly below the base
model's."""

import json
import os
import subprocess
import sys

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

COMMON = """
task = "causal-lm"
[model]
pretrained = "builtin:tiny-llama"
[lora]
target_modules = "all-linear"
modules_to_save = ["lm_head"]  # a random tiny model's head is too weak for any LoRA to show learning
[train]
batch_size = 8
max_steps = 150
learning_rate = 1e-2
log_every_steps = 50
checkpointing_steps = 0
"""
FORMATS = {
    "text": ('[data]\nsource = "builtin:tiny-text"\nmax_length = 64\n', "text"),
    "prompt-response": ('[data]\nsource = "builtin:tiny-instruct"\ntemplate = "alpaca"\nmax_length = 96\n', "train"),
    # chatml adds two tokens to tiny-llama; packed; evaluated on held-out rows; a prompt completed at the end.
    "chat": ('[data]\nsource = "builtin:tiny-chat"\ntemplate = "chatml"\nmax_length = 128\npacking = true\n'
             '[eval]\nsplit_ratio = 0.1\n[validation]\nprompts = ["Describe a red circle."]\nmax_new_tokens = 12\n',
             "train"),
}


def _pairs(tokenizer, name: str, rows: list[dict]) -> list[tuple[str, str]]:
    """(prompt, whole text) of each training row as the stock tokenizer formats it with its saved chat_template;
    the loss is taken on what follows the prompt (for text, on all of it)."""
    if name == "text":
        return [("", row["text"] + tokenizer.eos_token) for row in rows]
    if name == "chat":
        conversations = [row["messages"] for row in rows]
    else:
        conversations = [[*([{"role": "system", "content": row["system"]}] if row["system"] else []),
                          {"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
                         for row in rows]
    return [(tokenizer.apply_chat_template(c[:-1], tokenize=False, add_generation_prompt=True),
             tokenizer.apply_chat_template(c, tokenize=False)) for c in conversations]


def _loss(model, tokenizer, pairs: list[tuple[str, str]], special: bool) -> float:
    import torch

    with torch.no_grad():
        batch = tokenizer([whole for _, whole in pairs], padding=True, return_tensors="pt",
                          add_special_tokens=special)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        for row, (prompt, _) in enumerate(pairs):
            if prompt:
                labels[row, :len(tokenizer(prompt, add_special_tokens=False)["input_ids"])] = -100
        return model(**batch, labels=labels).loss.item()


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_trains_an_adapter_stock_peft_loads_and_it_lowers_the_loss(name, tmp_path, builtin_home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine import builtin
    from engine.events import read_events

    home = share_builtins(tmp_path / "home", builtin_home)
    section, _ = FORMATS[name]
    (tmp_path / "run.toml").write_text(f'name = "lm-{name}"\n{COMMON}{section}')
    env = {**os.environ, "LORATUI_HOME": str(home), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(tmp_path / "run.toml")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = home / "runs" / out.stdout.strip().splitlines()[-1]
    events = list(read_events(folder / "events.jsonl"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        base_path = builtin.path("builtin:tiny-llama")
        data = builtin.path(FORMATS[name][0].split('"')[1])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(base_path)
    added = len(tokenizer) - base.get_input_embeddings().num_embeddings
    assert added == (2 if name == "chat" else 0)
    if added:
        base.resize_token_embeddings(len(tokenizer))
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()][:48]
    pairs = _pairs(tokenizer, name, rows)
    before = _loss(base, tokenizer, pairs, name == "text")
    adapted = PeftModel.from_pretrained(base, folder)
    after = _loss(adapted, tokenizer, pairs, name == "text")
    assert after < 0.5 * before, (before, after)

    if name == "chat":
        assert "<|im_start|>" in tokenizer.chat_template
        evals = [e for e in events if e["type"] == "eval"]
        assert [e["step"] for e in evals] == [0, 150]
        assert evals[-1]["metrics"]["eval_loss"] < evals[0]["metrics"]["eval_loss"]
        assert evals[-1]["metrics"]["perplexity"] == pytest.approx(2.718281828 ** evals[-1]["metrics"]["eval_loss"])
        samples = [e for e in events if e["type"] == "sample_saved"]
        assert [s["prompt"] for s in samples] == ["Describe a red circle."]
