"""causal-lm data as training sees it: the loss mask token by token, templates rendered as transformers renders
them, packing that keeps examples apart (the loss of a packed batch is the unpacked one's), and each silent
fault of the issue stopped by preflight before any step."""

import pytest
import torch
from homes import share_builtins

from engine import builtin
from engine.preflight import Report
from engine.tasks.causal_lm import layout, packing, tokenizer
from engine.tasks.causal_lm.formatting import IGNORE, Formatter, screen
from engine.tasks.causal_lm.preflight import check_model, check_rows
from engine.tasks.causal_lm.spec import Data, Model
from engine.tasks.causal_lm.templates import BUILTIN

LLAMA = "builtin:tiny-llama"
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a red circle."},
        {"role": "assistant", "content": "A circle that is red."}, {"role": "user", "content": "Again."},
        {"role": "assistant", "content": "Red circle."}]
CHAT_LAYOUT = layout.Layout("chat", {"messages_column": "messages"})


@pytest.fixture(scope="module")
def home(tmp_path_factory, builtin_home):
    home = share_builtins(tmp_path_factory.mktemp("lm") / "home", builtin_home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        for name in (LLAMA, "builtin:tiny-chat", "builtin:tiny-instruct"):
            builtin.path(name)
        yield home


@pytest.fixture
def files(home, monkeypatch):
    monkeypatch.setenv("LORATUI_HOME", str(home))
    return tokenizer.load(LLAMA)


def _split(formatter: Formatter, example) -> tuple[list[str], list[str]]:
    decode = formatter.files.backend.decode
    trained = [decode([i], skip_special_tokens=False) for i, label in zip(example.ids, example.labels, strict=True)
               if label != IGNORE]
    masked = [decode([i], skip_special_tokens=False) for i, label in zip(example.ids, example.labels, strict=True)
              if label == IGNORE]
    assert all(label in (IGNORE, i) for i, label in zip(example.ids, example.labels, strict=True))
    return trained, masked


def test_only_the_assistant_turns_and_their_end_token_are_trained(files):
    formatter = Formatter(Data(source="d", template="chatml"), CHAT_LAYOUT, files, LLAMA)
    assert files.added == ["<|im_start|>", "<|im_end|>"]  # single tokens, added to the vocabulary
    example = formatter.encode({"messages": CHAT})
    trained, masked = _split(formatter, example)
    assert "".join(trained) == "A circle that is red.<|im_end|>\nRed circle.<|im_end|>\n"
    assert "".join(masked) == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nDescribe a red circle."
                               "<|im_end|>\n<|im_start|>assistant\n<|im_start|>user\nAgain.<|im_end|>\n"
                               "<|im_start|>assistant\n")
    # Token by token: the mask is 1 exactly on the tokens of the two assistant turns, in place.
    text = files.backend.decode(example.ids, skip_special_tokens=False)
    assert text.startswith("<|im_start|>system") and len(trained) + len(masked) == len(example.ids)
    assert "<|im_end|>" in formatter.stop_tokens
    everything = Formatter(Data(source="d", template="chatml", train_on_prompt=True), CHAT_LAYOUT, files, LLAMA)
    assert everything.encode({"messages": CHAT}).labels == example.ids


def test_prompt_response_rows_by_alpaca_and_text_rows_with_eos(files):
    pairs = layout.Layout("prompt-response", {"prompt_column": "p", "response_column": "r", "system_column": "s"})
    formatter = Formatter(Data(source="d", template="alpaca"), pairs, files, LLAMA)
    trained, masked = _split(formatter, formatter.encode({"p": "Name a shape.", "r": "Circle.", "s": ""}))
    assert "".join(masked) == "### Instruction:\nName a shape.\n\n### Response:\n"
    assert "".join(trained) == "Circle.</s>\n\n" and files.added == []
    text = Formatter(Data(source="d"), layout.Layout("text", {"text_column": "t"}), files, LLAMA)
    example = text.encode({"t": "a red circle."})
    assert example.labels == example.ids and example.ids[0] == files.token_id("<s>") and \
        example.ids[-1] == files.token_id("</s>")


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_templates_render_as_transformers_apply_chat_template(name, files, home):
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(builtin.path(LLAMA))
    auto.chat_template = BUILTIN[name].source
    formatter = Formatter(Data(source="d", template=name), CHAT_LAYOUT, files, LLAMA)
    assert formatter.render(CHAT)[0] == auto.apply_chat_template(CHAT, tokenize=False)
    prompt = formatter.files.backend.decode(formatter.prompt_ids("Hi."), skip_special_tokens=False)
    assert prompt == auto.apply_chat_template([{"role": "user", "content": "Hi."}], tokenize=False,
                                              add_generation_prompt=True)


def test_overlong_rows_are_cut_or_dropped_and_counted(files):
    rows = [{"messages": CHAT[1:3]}, {"messages": [CHAT[1], {"role": "assistant", "content": "word " * 40}]}]
    cut = Data(source="d", template="chatml", max_length=40)
    found = screen(Formatter(cut, CHAT_LAYOUT, files, LLAMA), cut, rows)
    assert (found.overlong, found.rows, found.problems) == (1, [0, 1], [])
    assert [len(e.ids) for e in found.examples] == [found.lengths[0], 40] and found.lengths[1] > 40
    drop = cut.model_copy(update={"overlong": "drop"})
    assert screen(Formatter(drop, CHAT_LAYOUT, files, LLAMA), drop, rows).rows == [0]


def test_packing_fills_rows_and_keeps_every_example_once():
    lengths = [30, 70, 50, 20, 100, 10, 45]
    rows = packing.plan(lengths, 100)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 100 for row in rows) and len(rows) == 4
    assert packing.plan(lengths, 100) == rows


def test_a_packed_batch_has_the_loss_of_its_examples_unpacked(files, home):
    from transformers import AutoModelForCausalLM

    section = Data(source="builtin:tiny-chat", template="chatml", max_length=128)
    formatter = Formatter(section, CHAT_LAYOUT, files, LLAMA)
    rows = _chat_rows()
    examples = screen(formatter, section, rows, list(range(12))).examples
    model = AutoModelForCausalLM.from_pretrained(builtin.path(LLAMA), attn_implementation="sdpa")
    model.resize_token_embeddings(formatter.files.backend.get_vocab_size())
    torch.manual_seed(0)
    with torch.no_grad():  # random new rows: the ones the template added
        model.get_input_embeddings().weight[-2:].normal_()
    model.eval()
    pad = files.token_id("<pad>")
    packs = [[examples[i] for i in row] for row in packing.plan([len(e.ids) for e in examples], 128)]
    assert len(packs) < len(examples) and any(len(pack) > 2 for pack in packs)
    with torch.no_grad():
        packed = model(**packing.packed_batch(packs, pad), use_cache=False).loss
        unpacked = model(**packing.padded_batch(examples, pad), use_cache=False).loss
        batch = packing.packed_batch(packs, pad)
        batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
        leaking = model(**batch, use_cache=False).loss  # one causal sequence: examples see each other
    assert torch.allclose(packed, unpacked, atol=1e-5), (packed, unpacked)
    assert not torch.allclose(leaking, unpacked, atol=1e-3)


def _chat_rows():
    from engine.data import load_rows

    return load_rows(Data(source="builtin:tiny-chat", template="chatml"), 0)


def test_each_silent_fault_is_stopped_by_preflight(files, home, monkeypatch, tmp_path):
    def problems(data: dict, model: dict | None = None) -> list[str]:
        from engine.data import load_rows

        section = Data(**{"source": "builtin:tiny-chat", "template": "chatml", "max_length": 128, **data})
        report = Report()
        check_model(Model(pretrained=LLAMA, **(model or {})), {"train": {}, "lora": {}}, report, offline_ok=False)
        check_rows(section, load_rows(section, 0), report, images=False)
        return report.errors

    assert problems({}) == []
    # A template whose assistant turns end without EOS: generation would never stop.
    no_eos = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
              "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    assert problems({"template": no_eos}) == [
        "data.template: the Jinja template in data.template never trains the stop token </s> (row 0): the adapter "
        "would not learn to stop"]
    # Responses cut away by max_length: nothing to train in them.
    found = problems({"max_length": 12})
    assert len(found) == 1 and found[0].startswith("data.max_length: ") and \
        "examples have nothing to train, first row 0 (data.max_length cuts its response away)" in found[0]
    assert problems({"max_length": 12, "overlong": "drop"}) == [
        "data.overlong: all 160 examples are dropped (longer than 12 tokens, or nothing to train)"]
    # A template that leaves the assistant's turns out: nothing is trained.
    masks_all = "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] + '\n' }}{% endif %}{% endfor %}"
    assert problems({"template": masks_all})[-1].startswith(
        "data.max_length: 160 examples have nothing to train, first row 0 (the template masks all of it)")
    assert problems({"template": ""}) == [
        "data.template: the tokenizer of builtin:tiny-llama has no chat template to format chat data with "
        "(allowed: chatml, alpaca, llama3, or a Jinja chat template)"]
