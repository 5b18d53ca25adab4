"""A merged Stable Diffusion pipeline as one checkpoint file in the original layout, the one A1111 and ComfyUI load
(and diffusers' from_single_file): the UNet under model.diffusion_model., the VAE under first_stage_model., the
text encoders under their original names and in their original shapes.

Written for the families whose original checkpoint the diffusers folder holds whole (sd1, sdxl). sd2 is refused:
the diffusers conversion of its OpenCLIP text encoder drops the last layer, and the folder does not say whether
the model predicts v, so a file made from it would not be an SD 2 checkpoint. Every file is read back with
diffusers' own single-file conversions before it is kept: a layout they would not read as these very weights is
refused, never written.
"""

import re

from engine.errors import LoratuiError

UNET, VAE = "model.diffusion_model.", "first_stage_model."
# Per family, its components and where each goes: (component, key prefix, the text encoder's layout if it is one).
LAYOUTS = {
    "sd1": (("unet", UNET, None), ("vae", VAE, None), ("text_encoder", "cond_stage_model.transformer.", "clip")),
    "sdxl": (("unet", UNET, None), ("vae", VAE, None),
             ("text_encoder", "conditioner.embedders.0.transformer.", "clip"),
             ("text_encoder_2", "conditioner.embedders.1.model.", "openclip")),
}
REFUSED = {"sd2": "the diffusers folder lacks the last layer of its OpenCLIP text encoder and does not say whether "
                  "it predicts v, so one file would not be an SD 2 checkpoint"}
_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPENCLIP = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}


def check_family(family: str | None, what: str) -> None:
    if family in LAYOUTS:
        return
    why = REFUSED.get(family) or "only Stable Diffusion 1.x and XL pipelines have a single-file checkpoint layout " \
                                 "loratui writes"
    raise LoratuiError(f"--single-file: {what}: {why}", hint="merge to a folder with --out DIR (from_pretrained "
                                                             "loads it)")


def state_dict(pipe, family: str) -> dict:
    """The pipeline's weights in the family's single-file layout, checked to read back as they are."""
    check_family(family, type(pipe).__name__)
    checkpoint = {}
    for component, prefix, text in LAYOUTS[family]:
        model = getattr(pipe, component)
        weights = model.state_dict()
        if text == "clip":
            converted = _clip(weights)
        elif text == "openclip":
            converted = _openclip(weights)
        else:
            converted = (_unet if component == "unet" else _vae)(weights, model.config)
        checkpoint.update({prefix + key: value.contiguous() for key, value in converted.items()})
    _check_reads_back(pipe, family, checkpoint)
    return checkpoint


def _unet(weights: dict, config) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = {**DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"], **DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"]}
    per = config["layers_per_block"] + 1  # an input level: its resnets and a downsampler; an output level: resnets
    with_attention = {int(k.split(".")[1]) for k in weights if re.match(r"up_blocks\.\d+\.attentions\.", k)}
    out = {}
    for key, value in weights.items():
        parts = key.split(".")
        if key in fixed:
            out[fixed[key]] = value
        elif parts[0] == "down_blocks" and parts[2] in ("resnets", "attentions"):
            index = int(parts[1]) * per + int(parts[3]) + 1
            out[f"input_blocks.{index}.{_block_rest(parts[2], parts[4:])}"] = value
        elif parts[0] == "down_blocks" and parts[2] == "downsamplers":
            out[f"input_blocks.{(int(parts[1]) + 1) * per}.0.op.{parts[-1]}"] = value
        elif parts[0] == "mid_block":
            slot = 2 * int(parts[2]) if parts[1] == "resnets" else 1
            out[f"middle_block.{slot}.{_block_rest(parts[1], parts[3:]).split('.', 1)[1]}"] = value
        elif parts[0] == "up_blocks" and parts[2] in ("resnets", "attentions"):
            index = int(parts[1]) * per + int(parts[3])
            out[f"output_blocks.{index}.{_block_rest(parts[2], parts[4:])}"] = value
        elif parts[0] == "up_blocks" and parts[2] == "upsamplers":
            slot = 2 if int(parts[1]) in with_attention else 1
            out[f"output_blocks.{int(parts[1]) * per + per - 1}.{slot}.conv.{parts[-1]}"] = value
        else:
            raise LoratuiError(f"--single-file: the UNet's {key} has no place in a single-file checkpoint",
                               hint="merge to a folder with --out DIR")
    return out


def _block_rest(kind: str, rest: list[str]) -> str:
    """'0.<resnet layer renamed>' or '1.<attention layers as they are>', within an input or output block."""
    if kind == "resnets":
        return "0." + ".".join([_RESNET.get(rest[0], rest[0]), *rest[1:]])
    return "1." + ".".join(rest)


def _vae(weights: dict, config) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    levels = len(config["up_block_types"])
    out = {}
    for key, value in weights.items():
        key = key.replace("conv_shortcut", "nin_shortcut")
        part, *parts = key.split(".")
        if key.replace("nin_shortcut", "conv_shortcut") in fixed:
            out[fixed[key]] = value
        elif parts[0] in ("down_blocks", "up_blocks"):
            level = int(parts[1]) if parts[0] == "down_blocks" else levels - 1 - int(parts[1])
            where = f"{part}.{'down' if parts[0] == 'down_blocks' else 'up'}.{level}"
            if parts[2] == "resnets":
                out[f"{where}.block.{'.'.join(parts[3:])}"] = value
            else:  # the one down- or upsampler of the level
                out[f"{where}.{'downsample' if parts[0] == 'down_blocks' else 'upsample'}.{'.'.join(parts[4:])}"] = value
        elif parts[:2] == ["mid_block", "resnets"]:
            out[f"{part}.mid.block_{int(parts[2]) + 1}.{'.'.join(parts[3:])}"] = value
        elif parts[:2] == ["mid_block", "attentions"]:
            layer = ".".join(parts[3:-1])
            if layer != "group_norm" and value.ndim == 2:
                value = value[:, :, None, None]  # 1x1 convolutions in the original
            out[f"{part}.mid.attn_1.{_VAE_ATTENTION[layer]}.{parts[-1]}"] = value
        else:
            raise LoratuiError(f"--single-file: the VAE's {key} has no place in a single-file checkpoint",
                               hint="merge to a folder with --out DIR")
    return out


def _clip(weights: dict) -> dict:
    """OpenAI CLIP keeps transformers' names, under text_model. (which transformers 5.6 and later leave out of a
    CLIPTextModel's own)."""
    return {key if key.startswith("text_model.") else f"text_model.{key}": value for key, value in weights.items()}


def _openclip(weights: dict) -> dict:
    """CLIPTextModelWithProjection's weights as OpenCLIP's: one in_proj per attention, the projection transposed."""
    import torch

    out = {"positional_embedding": weights["text_model.embeddings.position_embedding.weight"],
           "token_embedding.weight": weights["text_model.embeddings.token_embedding.weight"],
           "ln_final.weight": weights["text_model.final_layer_norm.weight"],
           "ln_final.bias": weights["text_model.final_layer_norm.bias"],
           "text_projection": weights["text_projection.weight"].T}
    layer = re.compile(r"^text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    for key, value in weights.items():
        match = layer.match(key)
        if match is None:
            continue
        n, name, kind = match.groups()
        if name in _OPENCLIP:
            out[f"transformer.resblocks.{n}.{_OPENCLIP[name]}.{kind}"] = value
        elif name == "self_attn.q_proj":  # with k_proj and v_proj, which follow it into the one in_proj
            out[f"transformer.resblocks.{n}.attn.in_proj_{kind}"] = torch.cat(
                [weights[f"text_model.encoder.layers.{n}.self_attn.{p}_proj.{kind}"] for p in "qkv"])
    return out


def _check_reads_back(pipe, family: str, checkpoint: dict) -> None:
    """diffusers' single-file loaders must read each component back as exactly the weights it has."""
    from diffusers.loaders import single_file_utils as read

    for component, prefix, text in LAYOUTS[family]:
        model = getattr(pipe, component)
        if text == "clip":
            back = read.convert_ldm_clip_checkpoint({k: v for k, v in checkpoint.items() if k.startswith(prefix)})
        elif text == "openclip":
            back = read.convert_open_clip_checkpoint(model, checkpoint, prefix=prefix)
        elif component == "unet":
            back = read.convert_ldm_unet_checkpoint(checkpoint, model.config)
        else:
            back = read.convert_ldm_vae_checkpoint(checkpoint, model.config)
        weights = _clip(model.state_dict()) if text == "clip" else model.state_dict()
        wrong = sorted(set(weights) ^ set(back)) or [k for k in weights if not weights[k].equal(back[k])]
        if wrong:
            raise LoratuiError(f"--single-file: the {component} of this {type(pipe).__name__} would not read back as "
                               f"it is (e.g. {wrong[0]}), so no file was written",
                               hint="merge to a folder with --out DIR")
