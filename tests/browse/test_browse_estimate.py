"""The pre-launch estimate: steps and epochs as the loop counts them, LoRA parameters without weights."""

import shutil
from pathlib import Path

import pytest

from engine.spec import validate
from engine.spec_template import template_values
from loratui.browse import estimate

CONFIGS = Path(__file__).parent / "fixtures" / "repos" / "models" / "acme--tiny-sd"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((48, 4, 1, 1, 200, 0), (200, 17, 12)),
        ((48, 4, 1, 1, 0, 3), (36, 3, 12)),
        ((50, 4, 1, 1, 0, 1), (13, 1, 13)),  # the last, short batch still counts
        ((48, 4, 4, 1, 0, 2), (6, 2, 3)),
        ((48, 4, 1, 2, 0, 1), (6, 1, 6)),  # two processes share the rows
        ((3, 8, 4, 1, 10, 0), (10, 10, 1)),
    ],
)
def test_schedule(args, expected):
    assert estimate.schedule(*args) == expected


def test_split_expressions():
    counts = {"train": 48, "test": 2}
    assert estimate.split_rows("train", counts) == 48
    assert estimate.split_rows("train[:10]", counts) == 10
    assert estimate.split_rows("train[50%:]", counts) == 24
    assert estimate.split_rows("train+test", counts) == 50
    assert estimate.split_rows("validation", counts) is None


def _spec(**train):
    values = template_values(model="builtin:tiny-sd", data="builtin:shapes")
    values["train"].update(train)
    return validate(values)


def test_parameters_are_counted_from_configs_alone_and_match_the_real_model(tmp_path):
    """Config files only (no weights in the folder), and the count equals the real model's LoRA."""
    folder = tmp_path / "configs-only"
    shutil.copytree(CONFIGS, folder)
    spec = _spec()
    counts = estimate.count_parameters(folder, spec)

    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    real_base = sum(p.numel() for p in unet.parameters())
    unet.add_adapter(
        LoraConfig(r=spec.lora.rank, lora_alpha=spec.lora.alpha, target_modules=spec.lora.target_modules)
    )
    real_lora = sum(p.numel() for n, p in unet.named_parameters() if "lora_" in n)
    assert counts["base"]["unet"] == real_base
    assert counts["trainable"] == real_lora > 0
    assert set(counts["base"]) == {"unet", "vae", "text_encoder"}


def test_rank_and_text_encoder_change_the_count(tmp_path):
    low = estimate.count_parameters(CONFIGS, _spec())["trainable"]
    values = _spec().model_dump()
    values["lora"]["rank"] = 8
    doubled = estimate.count_parameters(CONFIGS, validate(values))["trainable"]
    assert doubled == 2 * low
    values["lora"]["train_text_encoder"] = True
    assert estimate.count_parameters(CONFIGS, validate(values))["trainable"] > doubled


def test_memory_grows_with_batch_and_shrinks_with_fp16_and_checkpointing():
    counts = estimate.count_parameters(CONFIGS, _spec())
    base = estimate.memory_bytes(_spec(), counts)
    assert estimate.memory_bytes(_spec(batch_size=8), counts) > base
    assert estimate.memory_bytes(_spec(mixed_precision="fp16"), counts) < base
    assert estimate.memory_bytes(_spec(gradient_checkpointing=True), counts) < base


def test_hub_model_fetches_config_files_only(fake_hub):
    fake_hub.repos[("model", "acme/tiny-sd")].files["unet/diffusion_pytorch_model.safetensors"] = b"w" * 64
    folder = estimate.config_folder("acme/tiny-sd")
    assert (folder / "unet" / "config.json").is_file()
    fetched = [p for m, p, _ in fake_hub.requests if m == "GET" and "/resolve/" in p]
    assert fetched and all(p.endswith(".json") for p in fetched)
    assert not (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_whole_estimate_for_a_builtin(loratui_home):
    result = estimate.estimate(_spec(max_steps=30), {"train": 48})
    assert (result.rows, result.steps, result.epochs, result.steps_per_epoch) == (48, 30, 3, 12)
    assert result.trainable_params > 0 and result.base_params > result.trainable_params
    assert result.memory_bytes > result.base_params * 4
