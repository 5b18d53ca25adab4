"""`library export` converts between diffusers and kohya; a round trip gives back the same tensors, and
diffusers' own loader applies the converted file exactly as it applies the original."""

import pytest
from library_loras import kohya_name

from engine.adapters.export import convert
from engine.adapters.safeload import read_header, scalar_bytes, tensor_bytes
from engine.errors import LoratuiError
from loratui.cli import main


def _tensors(path) -> dict[str, tuple]:
    header = read_header(path)
    return {k: (e.dtype, e.shape, tensor_bytes(header, k)) for k, e in header.tensors.items()}


def test_diffusers_kohya_diffusers_round_trip(tmp_path, loras):
    kohya = convert(loras["sd"], tmp_path / "k.safetensors", "kohya")
    back = convert(kohya, tmp_path / "d.safetensors", "diffusers")
    assert _tensors(back) == _tensors(loras["sd"])
    # the kohya names are the ones A1111/kohya use, each with an alpha (= rank: what loaders assumed before)
    expected = {kohya_name(k, sdxl=False) for k in _tensors(loras["sd"])}
    names = set(_tensors(kohya))
    assert expected <= names and {n for n in names - expected if not n.endswith(".alpha")} == set()
    assert read_header(kohya).metadata.get("lora_adapter_metadata") is None


@pytest.mark.parametrize("name", ["kohya", "kohya_sdxl", "kohya_sgm"])
def test_kohya_diffusers_kohya_round_trip(tmp_path, loras, name):
    diffusers = convert(loras[name], tmp_path / "d.safetensors", "diffusers")
    back = convert(diffusers, tmp_path / "k.safetensors", "kohya")
    original, returned = _tensors(loras[name]), _tensors(back)
    if name == "kohya_sgm":  # SGM block names come back in their diffusers spelling, same tensors
        assert sorted(v for v in original.values()) == sorted(v for v in returned.values())
        assert any(k.startswith("lora_unet_down_blocks_1_attentions_0") for k in returned)
    else:
        assert returned == original
    assert read_header(back).metadata.items() >= {
        k: v for k, v in read_header(loras[name]).metadata.items() if k != "format"}.items()


def _fused_deltas(base, lora_file, *, xl: bool = False) -> dict:
    """How much loading + fusing `lora_file` with diffusers changes each weight of a tiny pipeline."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    pipe = (StableDiffusionXLPipeline if xl else StableDiffusionPipeline).from_pretrained(base)
    models = {"unet": pipe.unet, "te": pipe.text_encoder, "te2": getattr(pipe, "text_encoder_2", None)}
    models = {name: model for name, model in models.items() if model is not None}
    before = {f"{m}.{k}": v.clone() for m, model in models.items() for k, v in model.state_dict().items()}
    pipe.load_lora_weights(str(lora_file))
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    after = {f"{m}.{k}": v for m, model in models.items() for k, v in model.state_dict().items()}
    return {k: after[k] - before[k] for k in before}


def _close(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_diffusers_loads_exports_like_the_originals(tmp_path, loras, tiny_sd):
    # kohya file with alpha 2 at rank 4: every update is scaled by 0.5
    original = _fused_deltas(tiny_sd, loras["kohya"])
    assert max(d.abs().max().item() for d in original.values()) > 1e-3
    exported = _fused_deltas(tiny_sd, convert(loras["kohya"], tmp_path / "d.safetensors", "diffusers"))
    assert _close(original, exported) < 1e-6
    from_diffusers = _fused_deltas(tiny_sd, convert(loras["sd"], tmp_path / "k.safetensors", "kohya"))
    assert _close(_fused_deltas(tiny_sd, loras["sd"]), from_diffusers) < 1e-6


def test_sdxl_exports_load_like_the_original(tmp_path, loras, tiny_sdxl):
    original = _fused_deltas(tiny_sdxl, loras["sdxl"], xl=True)
    assert max(d.abs().max().item() for k, d in original.items() if k.startswith("te2.")) > 1e-3
    from_sgm = convert(loras["kohya_sgm"], tmp_path / "d.safetensors", "diffusers")
    assert _close(original, _fused_deltas(tiny_sdxl, from_sgm, xl=True)) < 1e-6
    to_kohya = convert(loras["sdxl"], tmp_path / "k.safetensors", "kohya")
    assert _close(original, _fused_deltas(tiny_sdxl, to_kohya, xl=True)) < 1e-6


def test_per_module_alpha_survives_conversion(tmp_path, loras, tiny_sd):
    """Alphas that differ per module become the LoraConfig's alpha_pattern, which diffusers applies."""
    import torch
    from safetensors.torch import load_file

    from engine.adapters.export import write_safetensors

    header = read_header(loras["kohya"])
    entries = []
    for key, entry in header.tensors.items():
        data = tensor_bytes(header, key)
        if key.endswith(".alpha"):
            data = scalar_bytes(1.0 if "attn2_to_k" in key else 2.0, entry.dtype)
        entries.append((key, entry.dtype, entry.shape, data))
    mixed = write_safetensors(tmp_path / "mixed.safetensors", entries, {})
    deltas = _fused_deltas(tiny_sd, convert(mixed, tmp_path / "d.safetensors", "diffusers"))
    tensors = load_file(mixed)
    module = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"
    for name, alpha in ((module, 1.0), (module.replace("to_k", "to_v"), 2.0)):
        down, up = tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"]
        weight = "unet." + name.removeprefix("lora_unet_").replace("mid_block_attentions_0_transformer_blocks_0_attn2_",
                                                                 "mid_block.attentions.0.transformer_blocks.0.attn2.")
        assert torch.allclose(deltas[weight + ".weight"], alpha / 4 * up @ down, atol=1e-6)


def test_llm_adapters_are_not_converted(tmp_path, loras):
    with pytest.raises(LoratuiError, match="llm adapter"):
        convert(loras["peft"], tmp_path / "x.safetensors", "kohya")


def test_cli_export_by_name_refuses_to_overwrite(tmp_path, capsys, lora_copy):
    assert main(["library", "import", str(lora_copy("kohya"))]) == 0
    out = tmp_path / "exported.safetensors"
    assert main(["library", "export", "paper-cut", "--format", "diffusers", "--out", str(out)]) == 0
    assert read_header(out).tensors
    assert main(["library", "export", "1", "--format", "kohya", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["library", "export", "1", "--format", "kohya", "--out", str(out), "--force"]) == 0
    assert _tensors(out) == _tensors(lora_copy("kohya"))


@pytest.mark.parametrize(("fmt", "file_name", "keys_end"), [
    ("diffusers", "pytorch_lora_weights.safetensors", (".lora_A.weight", ".lora_B.weight")),
    ("kohya", "ink-wash.safetensors", (".lora_down.weight", ".lora_up.weight", ".alpha")),  # the entry's name
])
def test_cli_export_out_is_a_folder_existing_or_not_or_a_file(tmp_path, capsys, loras, lora_copy, fmt, file_name,
                                                               keys_end):
    from safetensors.torch import load_file

    assert main(["library", "import", str(lora_copy("sd")), "--name", "ink-wash"]) == 0
    reference = _tensors(convert(loras["sd"], tmp_path / "reference.safetensors", fmt))
    existing = tmp_path / "existing"
    existing.mkdir()
    shapes = [(existing, existing / file_name), (tmp_path / "new" / "folder", tmp_path / "new" / "folder" / file_name),
              (tmp_path / "exact.safetensors", tmp_path / "exact.safetensors")]
    for out, written in shapes:
        export = ["library", "export", "ink-wash", "--format", fmt, "--out", str(out)]
        capsys.readouterr()
        assert main(export) == 0
        assert capsys.readouterr().out == f"wrote {written}\n"
        assert _tensors(written) == reference
        loaded = load_file(written)
        assert loaded and all(key.endswith(keys_end) for key in loaded)
        assert main(export) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: '{written}' already exists", "hint: choose another --out, or pass --force to replace it"]
        assert main([*export, "--force"]) == 0
    (tmp_path / "notes.txt").write_text("x")
    assert main(["library", "export", "ink-wash", "--format", fmt, "--out", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
