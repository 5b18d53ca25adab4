"""`loratui data preview`: a causal-lm spec's first examples as training tokenizes them, the trained text (the
assistant's turns, end-of-turn included) told apart from the masked, with token counts; colour on a terminal."""

import io
import json
import re

import pytest
from homes import inline, share_builtins

from engine.tasks.causal_lm import tokenizer

SPEC = """
name = "preview"
task = "causal-lm"
[model]
pretrained = "builtin:tiny-llama"
[data]
source = "builtin:tiny-chat"
template = "chatml"
max_length = {max_length}
[train]
max_steps = 1
"""
HEADER = re.compile(r"── row (\d+): (\d+) tokens, (\d+) trained(, cut to \d+ tokens)?")


def _preview(tmp_path, builtin_home, max_length: int, *args: str):
    home = share_builtins(tmp_path / "home", builtin_home)
    (tmp_path / "spec.toml").write_text(SPEC.format(max_length=max_length))
    return home, inline(home, "data", "preview", str(tmp_path / "spec.toml"), *args)


def test_preview_marks_the_assistant_turns_as_trained_and_counts_tokens(tmp_path, builtin_home):
    home, out = _preview(tmp_path, builtin_home, 128, "--rows", "3")
    assert out.returncode == 0, out.stderr
    conversations = [json.loads(line)["messages"] for line in
                     (home / "builtin" / "tiny-chat" / "train.jsonl").read_text().splitlines()[:3]]
    backend = tokenizer.load(str(home / "builtin" / "tiny-llama")).backend
    backend.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    blocks = re.split(r"^(?=── row)", out.stdout, flags=re.M)
    assert blocks[0].startswith("chat data, template chatml, the first 3 rows")
    for block, messages in zip(blocks[1:], conversations, strict=True):
        header, text = block.split("\n", 1)
        row, tokens, trained, cut = HEADER.fullmatch(header).groups()
        marked = re.findall(r"\[\[(.*?)\]\]", text, flags=re.S)
        assert marked == [m["content"] + "<|im_end|>\n" for m in messages if m["role"] == "assistant"]
        whole = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        assert re.sub(r"\[\[|\]\]", "", text).rstrip("\n") + "\n" == whole
        assert int(tokens) == len(backend.encode(whole, add_special_tokens=False).ids)
        assert 0 < int(trained) < int(tokens) and cut is None
    assert len(marked) == 2  # the third conversation asks again: both answers are trained


def test_preview_says_what_max_length_cuts(tmp_path, builtin_home):
    _, out = _preview(tmp_path, builtin_home, 24, "--rows", "1")
    assert HEADER.fullmatch(out.stdout.splitlines()[1]).group(4) == ", cut to 24 tokens"
    assert "[[" not in out.stdout  # the answer is cut away: nothing left to train


def test_on_a_terminal_trained_text_is_coloured_and_masked_text_dimmed(tmp_path, builtin_home):
    from rich.console import Console

    from engine.spec import load_spec
    from engine.tasks.causal_lm.preview import preview
    from loratui.commands.data import print_preview

    home, _ = _preview(tmp_path, builtin_home, 128, "--rows", "1")
    screen = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        shown = preview(load_spec(tmp_path / "spec.toml"), 1)
    print_preview(Console(file=screen, force_terminal=True, color_system="standard"), shown)
    assert "\x1b[2m<|im_start|>user" in screen.getvalue() and "\x1b[1;32mThe square." in screen.getvalue()
    assert "[[" not in screen.getvalue()


def test_a_task_without_a_preview_is_refused_in_one_line(tmp_path):
    (tmp_path / "spec.toml").write_text('name = "c"\ntask = "sequence-classification"\n[model]\npretrained = '
                                        '"builtin:tiny-bert"\n[data]\nsource = "builtin:tiny-reviews"\n'
                                        '[train]\nmax_steps = 1\n')
    out = inline(tmp_path / "home", "data", "preview", str(tmp_path / "spec.toml"))
    assert out.returncode != 0 and out.stderr.startswith("error: task: sequence-classification has no data preview")
