"""LLM adapters (PEFT folders) on tiny-llama: weights, combine, merge_and_unload, text completions."""

import json

import pytest
import torch
from adapter_ops_data import builtin_model, llm_lora

from engine.adapters.combine import combine
from engine.adapters.combine_options import METHODS, USES_DENSITY
from engine.adapters.generate import TextSettings, generate_text
from engine.adapters.load import Session
from engine.adapters.merge import merge
from engine.adapters.names import COMPANION_NAMES
from engine.errors import LoratuiError


@pytest.fixture(scope="module")
def setup(builtin_home, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    base = builtin_model("tiny-llama", builtin_home)
    root = tmp_path_factory.mktemp("llm")
    model = AutoModelForCausalLM.from_pretrained(base)
    paths = {
        "x": llm_lora(base, root / "x", rank=4, seed=1, model=model),
        "y": llm_lora(base, root / "y", rank=8, seed=2, targets=("q_proj", "k_proj", "v_proj"), model=model),
    }
    session = Session(str(base), device="cpu")
    for label, path in paths.items():
        session.add(label, path)
    return base, root, paths, session


def _logits(model, tokenizer):
    ids = tokenizer("the quick brown fox", return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_cat_combination_of_peft_adapters_equals_the_weighted_pair(setup):
    base, root, paths, session = setup
    out = combine([paths["x"], paths["y"]], [0.7, -0.3], root / "xy", method="cat")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 12 and config["task_type"] == "CAUSAL_LM"
    session.add("xy", out)
    session.activate({"x": 0.7, "y": -0.3})
    pair = _logits(session.model, session.tokenizer)
    session.activate({"xy": 1.0})
    combined = _logits(session.model, session.tokenizer)
    with session.base_only():
        alone = _logits(session.model, session.tokenizer)
    assert torch.allclose(pair, combined, atol=1e-5)
    assert not torch.allclose(pair, alone, atol=1e-2)


def test_merged_model_loads_with_the_stock_loader_and_matches(setup, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, _, paths, session = setup
    out = merge(
        str(base), [("x", paths["x"], 0.5), ("y", paths["y"], 1.5)], tmp_path / "merged", device="cpu"
    )
    merged = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    session.activate({"x": 0.5, "y": 1.5})
    assert torch.allclose(_logits(merged, tokenizer), _logits(session.model, session.tokenizer), atol=1e-5)


def test_text_completions_are_reproducible_and_follow_the_adapters(setup):
    _, _, _, session = setup
    settings = TextSettings("the quick brown fox", seed=5, max_new_tokens=12, temperature=0.9)
    session.activate({"x": 1.0})
    first, again = generate_text(session, settings), generate_text(session, settings)
    assert first == again and first
    greedy = TextSettings("the quick brown fox", max_new_tokens=12)
    with session.base_only():
        plain = generate_text(session, greedy)
    session.activate({"y": 3.0})
    assert generate_text(session, greedy) != plain


def test_llm_adapters_take_one_weight_not_block_scales(setup):
    _, _, _, session = setup
    session.activate({"x": 1.0})
    with pytest.raises(LoratuiError, match="only diffusion UNets"):
        session.activate({"x": {"unet": {"mid": 1.0}}})
    with pytest.raises(LoratuiError, match="finite number"):
        session.activate({"x": float("nan")})
    assert session.active == {"x": 1.0}


def test_an_empty_activation_is_the_base_model(setup):
    _, _, _, session = setup
    session.activate({})
    off = _logits(session.model, session.tokenizer)
    with session.base_only():
        assert torch.equal(off, _logits(session.model, session.tokenizer))
    session.activate({"x": 1.0})
    assert not torch.equal(off, _logits(session.model, session.tokenizer))



@pytest.fixture(scope="module")
def templated(setup):
    """Rank-4 adapters saved with the tokenizer and chat template they were trained with: p and q with chatml,
    r with alpaca; and the base model to load them on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.tasks.causal_lm.templates import BUILTIN

    base, root, _, _ = setup
    folders = {}
    for name, seed, template in (("p", 11, "chatml"), ("q", 12, "chatml"), ("r", 13, "alpaca")):
        folders[name] = llm_lora(base, root / name, rank=4, seed=seed)
        tokenizer = AutoTokenizer.from_pretrained(base)
        tokenizer.chat_template = BUILTIN[template].source
        tokenizer.save_pretrained(folders[name])
    return folders, AutoModelForCausalLM.from_pretrained(base)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_combines_peft_adapters_with_the_tokenizer_they_were_trained_with(templated, method, tmp_path):
    import copy

    from peft import PeftModel

    folders, base = templated
    out = combine([folders["p"], folders["q"]], [0.6, 0.4], tmp_path / method, method=method,
                  density=0.5 if method in USES_DENSITY else None)
    companions = sorted(p.name for p in folders["p"].iterdir() if p.name in COMPANION_NAMES)
    assert "chat_template.jinja" in companions
    assert all((out / name).read_bytes() == (folders["p"] / name).read_bytes() for name in companions)
    model = PeftModel.from_pretrained(copy.deepcopy(base), out)
    assert model.peft_config["default"].task_type == "CAUSAL_LM"


def test_adapters_trained_with_other_templates_are_not_combined(templated, tmp_path):
    folders, _ = templated
    with pytest.raises(LoratuiError, match="p and r differ in chat_template.jinja"):
        combine([folders["p"], folders["r"]], [0.5, 0.5], tmp_path / "pr", names=["p", "r"])
    assert not (tmp_path / "pr").exists()
