"""Each layout a user brings imports with what it says about itself, and fits the base it was made for."""

import pytest

from engine.adapters.basemodel import check_against_base
from engine.adapters.inspect import inspect_file, own_metadata
from loratui.library import adapters

SD_MODULES = 56  # tiny-sd: 48 UNet attention projections + 8 text-encoder ones


def test_diffusers_file_as_stock_diffusers_writes_it(db, loras):
    row = adapters.register(db, loras["sd"], base_model="builtin:tiny-sd")
    assert (row["format"], row["family"], row["rank"], row["alpha"]) == ("diffusers", "sd1", 4, None)
    assert row["target_modules"] == ["k_proj", "out_proj", "q_proj", "to_k", "to_out.0", "to_q", "to_v", "v_proj"]
    assert row["metadata"]["loratui.derived"]["modules"] == SD_MODULES
    assert row["metadata"]["loratui.derived"]["tensors"] == 2 * SD_MODULES
    assert row["metadata"]["loratui.derived"]["components"] == ["text_encoder", "unet"]
    assert row["name"] == "sd"  # the folder name, since the file is the generic pytorch_lora_weights
    assert db.execute("SELECT family FROM base_models WHERE ref = 'builtin:tiny-sd'").fetchone()[0] == "sd1"


def test_kohya_file_with_its_metadata(db, loras):
    row = adapters.register(db, loras["kohya"])
    assert (row["format"], row["family"], row["rank"], row["alpha"]) == ("kohya", "sd1", 4, 2.0)
    assert row["name"] == "paper-cut"  # ss_output_name
    assert row["base_model"] == "runwayml/stable-diffusion-v1-5"
    assert row["trigger_words"] == ["papercut", "layered paper"]
    meta = row["metadata"]
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_tag_frequency"] == {"shapes": {"paper": 12, "cut": 9}}  # JSON values decoded
    assert meta["modelspec.title"] == "Paper Cut"
    assert meta["loratui.derived"]["modules"] == SD_MODULES


@pytest.mark.parametrize("name", ["sdxl", "kohya_sdxl", "kohya_sgm"])
def test_sdxl_in_every_spelling_is_sdxl_and_fits_tiny_sdxl(db, loras, name):
    row = adapters.register(db, loras[name])
    assert row["family"] == "sdxl"
    assert row["metadata"]["loratui.derived"]["components"] == ["text_encoder", "text_encoder_2", "unet"]
    report = check_against_base(loras[name], "builtin:tiny-sdxl")
    assert report.fits, (report.missing, report.mismatched)
    assert report.checked == report.matched == 48 + 8 + 8


def test_sdxl_keys_use_te1_and_te2(loras):
    from engine.adapters.safeload import read_header

    keys = read_header(loras["kohya_sdxl"]).tensors
    assert any(k.startswith("lora_te1_text_model_encoder_layers_0") for k in keys)
    assert any(k.startswith("lora_te2_text_model_encoder_layers_0") for k in keys)
    assert not any(k.startswith("lora_te_") for k in keys)


def test_peft_folder(db, loras):
    row = adapters.register(db, loras["peft"])
    assert (row["format"], row["family"], row["rank"], row["alpha"]) == ("peft", "llm", 4, 8.0)
    assert row["target_modules"] == ["q_proj", "v_proj"]
    assert row["metadata"]["adapter_config"]["task_type"] == "CAUSAL_LM"
    assert row["base_model"] == row["metadata"]["adapter_config"]["base_model_name_or_path"]
    assert check_against_base(loras["peft"], "builtin:tiny-llama").fits
    assert not check_against_base(loras["peft"], "builtin:tiny-sd").fits


def test_check_lists_the_modules_that_do_not_fit(loras):
    report = check_against_base(loras["sd"], "builtin:tiny-sdxl")
    assert not report.fits
    # tiny-sdxl cross-attends to 64 features, tiny-sd to 32: every attn2 to_k/to_v differs in shape.
    assert len(report.mismatched) == 12 and all(".attn2.to_" in m for m in report.mismatched)
    assert report.base_family == "sdxl" and report.adapter_family is None


def test_own_header_keys_are_read_back(tmp_path, loras):
    from safetensors.torch import load_file, save_file

    facts = {"base_model": "builtin:tiny-sd", "family": "sd1", "rank": 4, "alpha": 2, "steps": 300,
             "spec_hash": "abc123", "trigger_words": ["sks dog"], "target_modules": ["to_q", "to_k"]}
    target = tmp_path / "own.safetensors"
    save_file(load_file(loras["sd"]), target, metadata=own_metadata(**facts))
    info = inspect_file(target)
    assert (info.base_model, info.family, info.alpha, info.trigger_words) == ("builtin:tiny-sd", "sd1", 2.0,
                                                                               ["sks dog"])
    assert info.metadata["loratui.steps"] == "300" and info.metadata["loratui.spec_hash"] == "abc123"
    assert info.target_modules == ["k_proj", "out_proj", "q_proj", "to_k", "to_out.0", "to_q", "to_v", "v_proj"]


def test_inspect_does_not_import_torch(loras):
    import subprocess
    import sys

    code = (f"import sys; from engine.adapters.inspect import inspect_file; inspect_file({str(loras['kohya'])!r}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
