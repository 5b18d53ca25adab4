"""causal-lm end to end through `loratui run` (accelerate launch), one run per data format on the built-ins: the
adapter loads with stock transformers + PeftModel.from_pretrained (the tokenizer saved beside it, holding the
template trained with), and its loss on the training examples, computed by stock code, is clearly below the base
model's.

The runs start together in one module fixture (their start-up, mostly imports, shares the cores), with the chat
run again on 2 processes for its eval loss, and other causal-lm tests take their adapters from it instead of
training their own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import inline, share_builtins

pytestmark = pytest.mark.slow

STEPS = 30  # enough for each format's loss to fall well under half the base's
COMMON = f"""
task = "causal-lm"
[model]
pretrained = "builtin:tiny-llama"
[lora]
target_modules = "all-linear"
modules_to_save = ["lm_head"]  # a random tiny model's head is too weak for any LoRA to show learning
[train]
batch_size = 8
max_steps = {STEPS}
learning_rate = 1e-2
log_every_steps = {STEPS}
checkpointing_steps = {STEPS}
"""
DATA = {"text": "builtin:tiny-text", "prompt-response": "builtin:tiny-instruct", "chat": "builtin:tiny-chat"}
FORMATS = {
    # text in plain shuffled order, prompt-response grouped by length (the default): both orders end to end.
    "text": f'[data]\nsource = "{DATA["text"]}"\nmax_length = 48\ngroup_by_length = false\n',
    "prompt-response": f'[data]\nsource = "{DATA["prompt-response"]}"\ntemplate = "alpaca"\nmax_length = 64\n',
    # chatml adds two tokens to tiny-llama; packed; evaluated on held-out rows; a prompt completed at the end.
    "chat": f'[data]\nsource = "{DATA["chat"]}"\ntemplate = "chatml"\nmax_length = 96\npacking = true\n'
            '[eval]\nsplit_ratio = 0.1\nbatch_size = 3\n[validation]\nprompts = ["Describe a red circle."]\n'
            'max_new_tokens = 12\n',
}
# The chat run again on 2 processes (gloo on CPU), to one step: its eval at step 0 must be the 1-process run's.
# 16 eval rows in batches of 3: the last holds 1, padded to a whole batch and unpadded again by gather_for_metrics.
TWO_PROCESSES = ("chat", "[launch]\nnum_processes = 2\nmulti_gpu = true\n")


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory, builtin_home) -> dict[str, Path]:
    """Each format's finished run folder, and chat-2's, in one LORATUI_HOME (returned under the key "home")."""
    tmp = tmp_path_factory.mktemp("lm-runs")
    home = share_builtins(tmp / "home", builtin_home)
    env = {**os.environ, "LORATUI_HOME": str(home), "OMP_NUM_THREADS": "1"}
    with pytest.MonkeyPatch.context() as patch:  # built here once, not by three runs racing
        patch.setenv("LORATUI_HOME", str(home))
        from engine import builtin

        for ref in ("builtin:tiny-llama", *DATA.values()):
            builtin.path(ref)
    specs = {name: f'name = "lm-{name}"\n{COMMON}{section}' for name, section in FORMATS.items()}
    # one run with activation checkpointing, whose old transformers name warned into the run's log
    specs["prompt-response"] = specs["prompt-response"].replace("[train]\n", "[train]\ngradient_checkpointing = true\n")
    specs["chat-2"] = (f'name = "lm-chat-2"\n{COMMON}{FORMATS[TWO_PROCESSES[0]]}{TWO_PROCESSES[1]}'
                       .replace(f"max_steps = {STEPS}", "max_steps = 1"))
    procs = {}
    for name, spec in specs.items():
        (tmp / f"{name}.toml").write_text(spec)
        procs[name] = subprocess.Popen([sys.executable, "-m", "loratui", "run", "--spec", str(tmp / f"{name}.toml")],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folders = {"home": home}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        folders[name] = home / "runs" / out.strip().splitlines()[-1]
    return folders


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
def test_each_format_trains_an_adapter_stock_peft_loads_and_it_lowers_the_loss(name, lm_runs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.events import read_events

    folder, builtins = lm_runs[name], lm_runs["home"] / "builtin"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(builtins / "tiny-llama")
    added = len(tokenizer) - base.get_input_embeddings().num_embeddings
    assert added == (2 if name == "chat" else 0)
    if added:
        base.resize_token_embeddings(len(tokenizer))
    train = builtins / DATA[name].removeprefix("builtin:") / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()][:48]
    pairs = _pairs(tokenizer, name, rows)
    before = _loss(base, tokenizer, pairs, name == "text")
    adapted = PeftModel.from_pretrained(base, folder)
    after = _loss(adapted, tokenizer, pairs, name == "text")
    assert after < 0.5 * before, (before, after)

    if name == "chat":
        from safetensors import safe_open

        events = list(read_events(folder / "events.jsonl"))
        with safe_open(folder / "checkpoints" / f"checkpoint-{STEPS:06d}" / "lora.safetensors", "pt") as checkpoint:
            assert any("embed_tokens" in key for key in checkpoint.keys())  # the grown embeddings are checkpointed
        assert "<|im_start|>" in tokenizer.chat_template
        evals = [e for e in events if e["type"] == "eval"]
        assert [e["step"] for e in evals] == [0, STEPS]
        assert evals[-1]["metrics"]["eval_loss"] < evals[0]["metrics"]["eval_loss"]
        assert evals[-1]["metrics"]["perplexity"] == pytest.approx(2.718281828 ** evals[-1]["metrics"]["eval_loss"])
        samples = [e for e in events if e["type"] == "sample_saved"]
        assert [s["prompt"] for s in samples] == ["Describe a red circle."]
        assert samples[0]["text"] == Path(samples[0]["path"]).read_text()  # the completion, in the events
        shown = json.loads(inline(lm_runs["home"], "runs", "show", folder.name, "--json").stdout)
        assert [(s["prompt"], s["text"]) for s in shown["samples"]] == [("Describe a red circle.", samples[0]["text"])]


def test_gen_and_merge_prompt_the_registered_adapter_as_training_did(lm_runs, tmp_path):
    """The library's copy of the chat adapter keeps its tokenizer: gen formats the prompt with its template and
    stops on its end-of-turn, completing the prompt as training's own sample did; --raw does not; the merged
    model folder does the same with stock transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    home, folder = lm_runs["home"], lm_runs["chat"]
    name = folder.name  # the run registered its adapter under the run id
    stored = json.loads(inline(home, "library", "show", name, "--json").stdout)["path"]
    assert (Path(stored) / "chat_template.jinja").read_text() == (folder / "chat_template.jinja").read_text()
    trained = (folder / "samples" / f"step-{STEPS:06d}-0.txt").read_text()
    prompt = ["--prompt", "Describe a red circle.", "--max-new-tokens", "12", "--seed", "0", "--json"]
    templated = json.loads(inline(home, "gen", "--adapter", name, *prompt).stdout)
    raw = json.loads(inline(home, "gen", "--adapter", name, *prompt, "--raw").stdout)
    assert templated["output_text"] == trained and trained
    assert templated["settings"]["template"] and not raw["settings"]["template"]
    assert raw["output_text"] != trained

    out = tmp_path / "merged"
    merged = inline(home, "merge", "builtin:tiny-llama", "--adapter", name, "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    tokenizer, model = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Describe a red circle."}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    completion = model.generate(**ids, max_new_tokens=12, do_sample=False)[0, ids["input_ids"].shape[1]:]
    assert tokenizer.decode(completion, skip_special_tokens=True) == trained


def test_two_processes_evaluate_causal_lm_as_one_does(lm_runs):
    from engine.events import read_events

    def first_eval(folder: Path) -> tuple[int, dict]:
        events = read_events(folder / "events.jsonl")
        processes = next(e for e in events if e["type"] == "run_started")["num_processes"]
        return processes, next(e["metrics"] for e in events if e["type"] == "eval" and e["step"] == 0)

    (one, alone), (two, shared) = first_eval(lm_runs["chat"]), first_eval(lm_runs["chat-2"])
    assert (one, two) == (1, 2)
    assert shared["eval_loss"] == pytest.approx(alone["eval_loss"], abs=1e-6)
    assert shared["perplexity"] == pytest.approx(alone["perplexity"], rel=1e-6)


def test_run_logs_hold_no_library_deprecation_warnings(lm_runs):
    """run.log is what the run detail's log pane shows: transformers' and peft's deprecations and notices about
    what loratui did on purpose (the chat run's grown embeddings, saved with the adapter) stay out of it."""
    assert "gradient_checkpointing = true" in (lm_runs["prompt-response"] / "spec.toml").read_text()
    for name in (*FORMATS, "chat-2"):
        log = (lm_runs[name] / "run.log").read_text()
        noise = [line for line in log.splitlines()
                 if any(word in line for word in ("FutureWarning", "DeprecationWarning", "save_embedding_layers"))]
        assert not noise, (name, noise)
