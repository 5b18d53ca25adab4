"""Combining PEFT adapters that train a head in full (modules_to_save): the head is kept when every parent's is
the same, and the combination refused, naming the head, when they differ."""

import json

import pytest
import torch

from engine.adapters.combine import combine
from engine.errors import LoratuiError


def _classifier(base, folder, *, lora_seed: int, head_seed: int):
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(head_seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                             modules_to_save=["classifier"], task_type="SEQ_CLS"))
    generator = torch.Generator().manual_seed(lora_seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    model.save_pretrained(folder)
    return folder, load_file(folder / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def bert(builtin_home):
    from engine import builtin

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(builtin_home))
        return builtin.path("builtin:tiny-bert")


def test_a_shared_head_is_kept_and_differing_heads_are_refused_by_name(bert, tmp_path):
    a, a_state = _classifier(bert, tmp_path / "a", lora_seed=1, head_seed=0)
    b, _ = _classifier(bert, tmp_path / "b", lora_seed=2, head_seed=0)  # the same head, other LoRA weights
    c, _ = _classifier(bert, tmp_path / "c", lora_seed=3, head_seed=9)  # another head

    out = combine([a, b], [0.5, 0.5], tmp_path / "ab", method="cat")
    from safetensors.torch import load_file

    state = load_file(out / "adapter_model.safetensors")
    heads = [k for k in state if "classifier" in k]
    assert heads and all(torch.equal(state[k], a_state[k]) for k in heads)
    assert "classifier" in json.loads((out / "adapter_config.json").read_text())["modules_to_save"]

    with pytest.raises(LoratuiError, match=r"a and c differ in .*classifier.*, which they train in full"):
        combine([a, c], [0.5, 0.5], tmp_path / "ac", method="cat", names=["a", "c"])
    assert not (tmp_path / "ac").exists()
