"""Combining diffusion LoRAs: exact cat, svd at full rank, rank rules, both parts, refusals."""

import pytest
import torch
from adapter_ops_data import builtin_model, sd_lora
from safetensors.torch import load_file, save_file

from engine.adapters.combine import combine, read_parts
from engine.adapters.combine_options import METHODS
from engine.errors import LoratuiError


@pytest.fixture(scope="module")
def loras(builtin_home, tmp_path_factory):
    """Three LoRAs on tiny-sd: a (rank 4, with text encoder), b (rank 8), c (rank 4, alpha 8, UNet only)."""
    base = builtin_model("tiny-sd", builtin_home)
    root = tmp_path_factory.mktemp("loras")
    return {
        "base": base,
        "a": sd_lora(base, root / "a", rank=4, seed=1),
        "b": sd_lora(base, root / "b", rank=8, seed=2),
        "c": sd_lora(base, root / "c", rank=4, seed=3, alpha=8, text_encoder=False),
    }


def _deltas(path) -> dict[tuple[str, str], torch.Tensor]:
    """(part, module) -> the weight change the LoRA makes at weight 1: scaling * B @ A."""
    deltas = {}
    for part_name, part in read_parts(path).items():
        for key in part.state:
            if key.endswith(".lora_A.weight"):
                module = key.removesuffix(".lora_A.weight")
                a, b = part.state[key], part.state[f"{module}.lora_B.weight"]
                deltas[part_name, module] = (b @ a) * part.config.lora_alpha / part.config.r
    return deltas


def _expected(parents: dict, weights: dict) -> dict:
    total = {}
    for name, weight in weights.items():
        for key, delta in _deltas(parents[name]).items():
            total[key] = total.get(key, 0) + weight * delta
    return total


def test_cat_is_the_exact_weighted_sum_of_the_deltas(loras, tmp_path):
    weights = {"a": 0.6, "b": -0.4, "c": 1.3}
    out = combine([loras[n] for n in weights], list(weights.values()), tmp_path / "mix", method="cat")
    got, expected = _deltas(out), _expected(loras, weights)
    assert got.keys() == expected.keys()
    assert {part for part, _ in got} == {"unet", "text_encoder"}
    worst = max((got[k] - expected[k]).abs().max().item() for k in expected)
    assert worst < 1e-5
    assert read_parts(out)["unet"].config.r == 4 + 8 + 4


def test_svd_at_full_rank_is_close_to_the_weighted_sum(loras, tmp_path):
    weights = {"a": 0.7, "b": 0.5}
    out = combine(
        [loras[n] for n in weights], list(weights.values()), tmp_path / "svd", method="svd", rank=12
    )
    got, expected = _deltas(out), _expected(loras, weights)
    assert got.keys() == expected.keys()
    assert max((got[k] - expected[k]).abs().max().item() for k in expected) < 1e-4
    # A low rank is an approximation, and the file has that rank.
    low = combine([loras["a"], loras["b"]], [0.7, 0.5], tmp_path / "svd2", method="svd", rank=2)
    assert read_parts(low)["unet"].config.r == 2
    assert max((_deltas(low)[k] - expected[k]).abs().max().item() for k in expected) > 1e-4


def test_linear_needs_equal_ranks_and_says_so(loras, tmp_path):
    with pytest.raises(LoratuiError) as error:
        combine(
            [loras["a"], loras["b"]], [0.5, 0.5], tmp_path / "lin", method="linear", names=["alpha", "beta"]
        )
    assert "equal rank" in error.value.message and "alpha: rank 4" in error.value.message
    assert "beta: rank 8" in error.value.message and "cat" in error.value.hint
    assert not (tmp_path / "lin").exists()
    out = combine([loras["a"], loras["c"]], [0.5, 0.5], tmp_path / "lin", method="linear")
    assert read_parts(out)["unet"].config.r == 4


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("linear", "cat", "svd")])
def test_every_pruning_method_writes_a_loadable_adapter(loras, tmp_path, method):
    rank = 3 if method.endswith("svd") else None
    out = combine(
        [loras["a"], loras["c"]], [0.8, 0.6], tmp_path / method, method=method, density=0.5, rank=rank
    )
    parts = read_parts(out)
    assert set(parts) == {"unet", "text_encoder"}
    assert parts["unet"].config.r == (rank or 4)
    assert all(t.is_contiguous() and torch.isfinite(t).all() for t in load_file(out).values())


def test_options_are_checked_all_at_once(loras, tmp_path):
    with pytest.raises(LoratuiError) as error:
        combine([loras["a"], loras["b"]], [1.0], tmp_path / "x", method="cat", density=2.0, rank=4)
    message = error.value.message
    assert "weights: 1 given for 2 adapters" in message
    assert "density: cat takes no density" in message and "rank: cat takes no rank" in message
    with pytest.raises(LoratuiError, match="method: 'blend'"):
        combine([loras["a"], loras["b"]], [1, 1], tmp_path / "x", method="blend")
    with pytest.raises(LoratuiError, match=r"density: 0 \(need 0 < D <= 1\)"):  # ties without one takes 0.2
        combine([loras["a"], loras["b"]], [1, 1], tmp_path / "x", method="ties", density=0)
    assert not (tmp_path / "x").exists()


def test_adapters_for_different_bases_are_refused_and_nothing_is_written(loras, tmp_path):
    state = load_file(loras["a"])
    key = next(k for k in state if k.startswith("unet.") and k.endswith("to_q.lora_A.weight"))
    state[key] = torch.zeros(4, 16)  # a layer 16 wide: not tiny-sd's
    (tmp_path / "other").mkdir()
    save_file(state, tmp_path / "other" / "pytorch_lora_weights.safetensors")
    with pytest.raises(LoratuiError, match="do not fit the same base model"):
        combine([loras["b"], tmp_path / "other"], [1, 1], tmp_path / "bad", method="cat")
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["other"]


def test_existing_output_is_never_overwritten(loras, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(LoratuiError, match="already exists"):
        combine([loras["a"], loras["b"]], [1, 1], tmp_path / "taken", method="cat")


def test_kohya_files_combine_like_their_diffusers_originals(loras, tmp_path):
    from engine.adapters.export import convert

    kohya = convert(loras["c"], tmp_path / "c-kohya.safetensors", "kohya")
    assert any(".alpha" in key for key in load_file(kohya))
    out = combine([loras["a"], kohya], [0.5, 0.5], tmp_path / "mix", method="cat")
    got, expected = _deltas(out), _expected(loras, {"a": 0.5, "c": 0.5})
    assert got.keys() == expected.keys()
    assert max((got[k] - expected[k]).abs().max().item() for k in expected) < 1e-5
