"""`loratui merge` output choices: --force replaces a folder only once the new one is whole, --dtype saves in a
lower precision, --single-file writes one checkpoint in the original Stable Diffusion layout that diffusers'
from_single_file (as A1111 and ComfyUI) loads back as the very merged weights; what has no such layout is refused
in one line."""

import json
from pathlib import Path

import numpy as np
import pytest
from adapter_ops_data import builtin_model, llm_lora, sd_lora
from homes import cli
from safetensors import safe_open

from loratui.cli import main


@pytest.fixture(scope="module")
def files(builtin_home, tmp_path_factory):
    sd, sdxl = builtin_model("tiny-sd", builtin_home), builtin_model("tiny-sdxl", builtin_home)
    llama = builtin_model("tiny-llama", builtin_home)
    root = tmp_path_factory.mktemp("merge-loras")
    return {"sd": sd, "sdxl": sdxl, "llama": llama, "ink": sd_lora(sd, root / "ink", rank=4, seed=1),
            "xl": sd_lora(sdxl, root / "xl", rank=4, seed=2, text_encoder=False),
            "chat": llm_lora(llama, root / "chat", rank=4, seed=3)}


@pytest.fixture
def db(files):
    from loratui.db.library import open_db
    from loratui.library import adapters

    database = open_db()
    for name, base in (("ink", "sd"), ("xl", "sdxl"), ("chat", "llama")):
        adapters.register(database, files[name], name=name, base_model=str(files[base]))
    yield database
    database.conn.close()


def _dtypes(folder) -> set[str]:
    with safe_open(folder / "unet" / "diffusion_pytorch_model.safetensors", "np") as weights:
        return {str(weights.get_slice(key).get_dtype()) for key in weights.keys()}


def test_force_replaces_a_folder_only_once_the_new_one_is_whole(db, capsys, tmp_path, files, monkeypatch):
    out = tmp_path / "outputs" / "merged"
    assert cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.8", "--out", str(out))[0] == 0
    assert _dtypes(out) == {"F32"}
    code, _, err = cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.5", "--out", str(out))
    assert code == 2 and f"{out} already exists and is not empty" in err and "--force" in err
    # A write that fails half-way leaves the old folder as it was, and nothing beside it.
    from diffusers import StableDiffusionPipeline

    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with monkeypatch.context() as patch:
        def fail(self, folder, **kwargs):
            (Path(folder) / "half-written").write_text("x")
            raise OSError(28, "No space left on device")

        patch.setattr(StableDiffusionPipeline, "save_pretrained", fail)
        code, _, err = cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.5", "--out", str(out), "--force")
        assert code == 2 and f"error: could not write {out}: No space left on device; what was there is kept" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["merged"]
    # --force with --dtype: the new folder, in half precision, where the old one was.
    code, stdout, _ = cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.5", "--out", str(out), "--force",
                           "--dtype", "float16")
    assert code == 0 and str(out) in stdout
    assert _dtypes(out) == {"F16"} and sorted(p.name for p in out.parent.iterdir()) == ["merged"]
    assert StableDiffusionPipeline.from_pretrained(out).unet.dtype.is_floating_point


def _same_weights(model, other) -> bool:
    mine, theirs = model.state_dict(), other.state_dict()
    return set(mine) == set(theirs) and all(mine[k].equal(theirs[k]) for k in mine)


def test_single_file_sd1_loads_back_as_the_merged_pipeline(db, capsys, tmp_path, files):
    import torch
    from diffusers import StableDiffusionPipeline

    folder, single = tmp_path / "folder", tmp_path / "ink-merged.safetensors"
    for where in (("--out", str(folder)), ("--single-file", str(single))):
        assert cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.8", *where)[0] == 0
    with safe_open(single, "np") as weights:
        assert json.loads(weights.metadata()["loratui.merged"]) == ["ink"]
        prefixes = {key.split(".")[0] for key in weights.keys()}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}  # the original layout
    merged = StableDiffusionPipeline.from_pretrained(folder)
    loaded = StableDiffusionPipeline.from_single_file(str(single), config=str(files["sd"]))
    for component in ("unet", "vae", "text_encoder"):
        assert _same_weights(getattr(merged, component), getattr(loaded, component)), component

    def image(pipe):
        return pipe("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(1),
                    output_type="np").images[0]

    assert np.array_equal(image(merged), image(loaded))
    code, _, err = cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.8", "--single-file", str(single))
    assert code == 2 and f"{single} already exists" in err
    assert cli(capsys, "merge", str(files["sd"]), "--adapter", "ink:0.5", "--single-file", str(single), "--force",
                "--dtype", "bfloat16")[0] == 0
    with safe_open(single, "pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.bfloat16}


def test_single_file_sdxl_holds_both_text_encoders_in_their_original_layout(db, capsys, tmp_path, files):
    from diffusers import StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from safetensors.torch import load_file

    folder, single = tmp_path / "folder", tmp_path / "xl.safetensors"
    for where in (("--out", str(folder)), ("--single-file", str(single))):
        assert cli(capsys, "merge", str(files["sdxl"]), "--adapter", "xl:0.8", *where)[0] == 0
    merged = StableDiffusionXLPipeline.from_pretrained(folder)
    checkpoint = load_file(single)
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in checkpoint
    # OpenCLIP's second encoder as ComfyUI reads it, by its prefix; diffusers' from_single_file tells the two
    # encoders apart by their width, which the tiny built-in's share, so it is given that one.
    second = convert_open_clip_checkpoint(merged.text_encoder_2, checkpoint, prefix="conditioner.embedders.1.model.")
    assert set(second) == set(merged.text_encoder_2.state_dict())
    assert all(merged.text_encoder_2.state_dict()[k].equal(v) for k, v in second.items())
    loaded = StableDiffusionXLPipeline.from_single_file(str(single), config=str(files["sdxl"]),
                                                        text_encoder_2=merged.text_encoder_2)
    for component in ("unet", "vae", "text_encoder"):
        assert _same_weights(getattr(merged, component), getattr(loaded, component)), component


def test_what_has_no_single_file_layout_is_refused_in_one_line(db, capsys, tmp_path, files):
    tmp_path = tmp_path / "outputs"
    tmp_path.mkdir()
    cases = [
        (("merge", str(files["llama"]), "--adapter", "chat:1", "--single-file", str(tmp_path / "llm.safetensors")),
         f"error: --single-file: {files['llama']} is not a diffusion pipeline"),
        (("merge", str(files["sd"]), "--adapter", "ink:1", "--single-file", str(tmp_path / "ink.ckpt")),
         "a single-file checkpoint is a .safetensors file"),
    ]
    for argv, message in cases:
        code, _, err = cli(capsys, *argv)
        assert code == 2 and message in err, err
    with pytest.raises(SystemExit):
        main(["merge", str(files["sd"]), "--adapter", "ink:1", "--out", str(tmp_path / "x"), "--dtype", "float8"])
    assert "invalid choice: 'float8'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sd2_single_files_are_refused_naming_why():
    from engine.errors import LoratuiError
    from engine.tasks.text_to_image.single_file import check_family

    with pytest.raises(LoratuiError, match="last layer of its OpenCLIP text encoder"):
        check_family("sd2", "StableDiffusionPipeline (sd2)")
