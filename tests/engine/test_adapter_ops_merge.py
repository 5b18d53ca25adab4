"""Merging adapters into a diffusion pipeline: a folder stock from_pretrained loads, matching the adapters."""

import numpy as np
import pytest
import torch
from adapter_ops_data import builtin_model, sd_lora

from engine.adapters.load import Session
from engine.adapters.merge import merge
from engine.errors import LoratuiError

ADAPTERS = {"a": 0.8, "b": -0.5}


@pytest.fixture(scope="module")
def setup(builtin_home, tmp_path_factory):
    base = builtin_model("tiny-sd", builtin_home)
    root = tmp_path_factory.mktemp("merge")
    paths = {"a": sd_lora(base, root / "a", rank=4, seed=1), "b": sd_lora(base, root / "b", rank=8, seed=2)}
    # Per-block scales are baked in too.
    weights = {**ADAPTERS, "a": {"unet": {"up": {"block_0": [0.8, 0.0, 0.8]}}, "text_encoder": 0.8}}
    out = merge(str(base), [(k, paths[k], weights[k]) for k in paths], root / "merged", device="cpu")
    session = Session(str(base), device="cpu")
    for label, path in paths.items():
        session.add(label, path)
    session.activate(weights)
    return base, paths, out, session


def _unet_and_text(pipe):
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 16, 16, generator=generator)
    ids = pipe.tokenizer("a blue square", padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        text = pipe.text_encoder(ids)[0]
        noise = pipe.unet(latents, 10, text).sample
    return text, noise


def test_merged_folder_loads_with_the_stock_loader_and_matches_the_adapters(setup):
    from diffusers import DiffusionPipeline

    base, _, out, session = setup
    merged = DiffusionPipeline.from_pretrained(out)
    assert type(merged).__name__ == "StableDiffusionPipeline"
    assert not any("lora" in name for name, _ in merged.unet.named_parameters())
    text, noise = _unet_and_text(merged)
    want_text, want_noise = _unet_and_text(session.pipe)
    assert torch.allclose(text, want_text, atol=1e-5)
    assert torch.allclose(noise, want_noise, atol=1e-5)
    with session.base_only():
        base_text, base_noise = _unet_and_text(session.pipe)
    assert not torch.allclose(text, base_text, atol=1e-3) and not torch.allclose(noise, base_noise, atol=1e-3)

    def image(pipe):
        generator = torch.Generator().manual_seed(1)
        pipe.set_progress_bar_config(disable=True)
        return pipe(
            "a circle", num_inference_steps=2, width=32, height=32, generator=generator, output_type="np"
        )

    assert np.abs(image(merged).images[0] - image(session.pipe).images[0]).max() < 1e-4


def test_merge_never_writes_into_an_existing_folder(setup, tmp_path):
    base, paths, _, _ = setup
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(LoratuiError, match="already exists"):
        merge(str(base), [("a", paths["a"], 1.0)], tmp_path / "out", device="cpu")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_a_bad_scale_leaves_nothing_behind(setup, tmp_path):
    base, paths, _, _ = setup
    with pytest.raises(LoratuiError, match="block_4"):
        merge(
            str(base), [("a", paths["a"], {"unet": {"up": {"block_4": 1.0}}})], tmp_path / "m", device="cpu"
        )
    assert list(tmp_path.iterdir()) == []
