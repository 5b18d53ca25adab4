"""The causal-lm spec and its preflight: the template trains the built-ins, the data format is told from the
columns, and bad specs are refused one line each, naming the field, by `loratui spec validate` before any model
loads."""

import json
import os
import subprocess
import sys

import pytest
import tomli_w
from homes import share_builtins

from engine.spec import parse_spec, parse_toml, spec_errors
from engine.spec_template import template_toml, template_values
from engine.tasks.causal_lm import layout
from engine.tasks.causal_lm.spec import Data, Model

TASK = "causal-lm"


def _spec(**sections) -> dict:
    values = template_values(TASK)
    for name, fields in sections.items():
        values[name] = {**values[name], **fields}
    return values


def test_the_template_trains_the_builtins_with_chatml():
    spec = parse_toml(template_toml(TASK))
    assert spec.model_dump() == template_values(TASK)
    assert (spec.model.pretrained, spec.data.source, spec.data.template) == ("builtin:tiny-llama",
                                                                             "builtin:tiny-chat", "chatml")
    assert (spec.data.train_on_prompt, spec.data.overlong, spec.model.attn_implementation) == (False, "truncate",
                                                                                               "sdpa")
    real = parse_spec(template_values(TASK, family="llm"))
    assert real.model.pretrained == "Qwen/Qwen2.5-0.5B-Instruct" and real.data.template == ""


@pytest.mark.parametrize(("sections", "error"), [
    ({"data": {"template": "chatlm"}}, "data.template: 'chatlm' is not a built-in template or a Jinja string "
                                       "(allowed: chatml, alpaca, llama3, or a Jinja chat template)"),
    ({"data": {"template": "{% for m in messages %}"}}, "data.template: not a valid Jinja template: "),
    ({"data": {"max_length": 0}}, "data.max_length: must be > 0 (got 0)"),
    ({"data": {"overlong": "wrap"}}, "data.overlong: 'wrap' is not allowed (allowed: truncate, drop)"),
    ({"data": {"format": "text", "messages_column": "chat", "template": ""}},
     "data.messages_column: not used with format 'text'"),
    ({"data": {"text_column": "t", "messages_column": "m"}}, "data.format: columns of text and chat are both named"),
    ({"data": {"prompt_column": "q"}}, "data.response_column: required with prompt_column"),
    ({"model": {"trust_remote_code": True}}, "model.trust_remote_code: true is not allowed (allowed: false)"),
    ({"model": {"load_in_4bit": True, "load_in_8bit": True}}, "model.load_in_8bit: set load_in_4bit or load_in_8bit"),
    ({"model": {"attn_implementation": "flash"}}, "model.attn_implementation: 'flash' is not allowed"),
])
def test_bad_fields_are_one_line_each(sections, error):
    errors = spec_errors(_spec(**sections))
    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_the_format_is_told_by_the_columns_named_or_found():
    def told(columns: list[str], **fields):
        found, problems = layout.resolve(Data(source="d", **fields), columns)
        return (found.format, found.columns) if found else problems

    assert told(["messages", "text"]) == ("chat", {"messages_column": "messages"})
    assert told(["instruction", "output", "system"]) == ("prompt-response", {
        "prompt_column": "instruction", "response_column": "output", "system_column": "system"})
    assert told(["content", "id"]) == ("text", {"text_column": "content"})
    assert told(["q", "a"], prompt_column="q", response_column="a") == ("prompt-response", {
        "prompt_column": "q", "response_column": "a"})
    assert told(["q", "a"]) == ["data.format: cannot tell text, prompt-response or chat data from the columns in d "
                                "(columns: q, a) (set data.format and its *_column fields)"]
    assert told(["prompt", "a"], format="prompt-response") == [
        "data.response_column: none of the usual columns (response, output, answer, completion) in d (columns: "
        "prompt, a) (name the column)"]


def test_4bit_builds_a_qlora_config():
    assert Model(pretrained="m").quantization() == {}
    assert Model(pretrained="m", load_in_8bit=True).quantization() == {"load_in_8bit": True}
    assert Model(pretrained="m", load_in_4bit=True, torch_dtype="bfloat16").quantization() == {
        "load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_use_double_quant": True}


def test_bad_specs_are_refused_one_line_each_before_any_model_loads(tmp_path, builtin_home):
    from engine import builtin

    home = share_builtins(tmp_path / "home", builtin_home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        for name in ("builtin:tiny-llama", "builtin:tiny-chat"):  # built beforehand: what is watched is the check
            builtin.path(name)
    sharegpt = tmp_path / "sharegpt.jsonl"
    sharegpt.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                 {"role": "assistant", "content": "hello"}]}) + "\n" +
                        json.dumps({"messages": [{"from": "human", "value": "hi"}]}) + "\n")
    specs = {
        "ok": {},
        "template": {"data": {"template": "chatlm"}},
        "column": {"data": {"messages_column": "dialogue"}},
        "messages": {"data": {"source": str(sharegpt)}},
        "no-template": {"data": {"template": ""}},
        "4bit": {"model": {"load_in_4bit": True}},
        "length": {"data": {"max_length": 0}},
    }
    files = []
    for name, sections in specs.items():
        files.append(tmp_path / f"{name}.toml")
        files[-1].write_text(tomli_w.dumps(_spec(**sections)))
    script = ("import sys\nfrom loratui.cli import main\ncode = main(['spec', 'validate', *sys.argv[1:]])\n"
              "print(sorted({'torch', 'transformers', 'peft'} & set(sys.modules)))\nsys.exit(code)")
    out = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "LORATUI_HOME": str(home), "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 2 and out.stdout.splitlines()[-1] == "[]", out.stdout + out.stderr
    assert f"ok: {files[0]} is valid (causal-lm, llm model, 160 rows of builtin:tiny-chat)" in out.stdout
    problems = [line.strip() for line in out.stderr.splitlines() if line.startswith("  ")]
    assert problems == [
        "data.template: 'chatlm' is not a built-in template or a Jinja string (allowed: chatml, alpaca, llama3, or a "
        "Jinja chat template)",
        "data.messages_column: no column 'dialogue' in builtin:tiny-chat (columns: messages)",
        "data.messages_column: 'messages' row 1 message 0 is {'from': 'human', 'value': 'hi'} (allowed: a list of "
        "{role, content} messages, roles system/user/assistant)",
        "data.template: the tokenizer of builtin:tiny-llama has no chat template to format chat data with (allowed: "
        "chatml, alpaca, llama3, or a Jinja chat template)",
        "model.load_in_4bit: bitsandbytes quantisation needs a CUDA GPU, and torch sees none here (allowed: false on "
        "this machine)",
        "data.max_length: must be > 0 (got 0)",
    ], out.stderr
    assert "6 of 7 specs are not valid" in out.stderr
