"""Models shaped like SD 1.5, SDXL and a 1B Llama, with random weights, built from their configs on the machine
(nothing downloaded) into the folder layout the engine loads; `tiny` gives the same architectures at the
built-ins' sizes, for a CPU. Their tokenizers are the built-ins' (a small vocabulary within the real one's size)."""

import json
import random
import shutil
from pathlib import Path

from train_throughput import SD15  # SD 1.5's UNet, VAE and text encoder shapes, from its published configs

SD15_REAL = {**SD15, "vae": {**SD15["vae"], "sample_size": 512}}
SDXL_REAL = {
    "unet": {"sample_size": 128, "layers_per_block": 2, "block_out_channels": (320, 640, 1280),
             "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
             "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
             "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
             "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
             "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816},
    "vae": {**SD15["vae"], "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
    "text_encoder": SD15["text_encoder"],
    "text_encoder_2": {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                       "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280},
}
# ~1.1B parameters, like TinyLlama: Llama 3.2 1B's layers with a 32000-token vocabulary.
LLAMA_REAL = {"vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
              "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 4096}

_TINY_TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
              "projection_dim": 32}
_TINY_UNET = {"sample_size": 32, "layers_per_block": 2, "block_out_channels": (32, 64), "attention_head_dim": 2,
              "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
              "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D")}
_TINY_VAE = {"block_out_channels": (32, 64), "layers_per_block": 2, "latent_channels": 4, "sample_size": 64,
             "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2}
SD15_TINY = {"unet": {**_TINY_UNET, "cross_attention_dim": 32}, "vae": _TINY_VAE, "text_encoder": _TINY_TEXT}
SDXL_TINY = {
    "unet": {**_TINY_UNET, "cross_attention_dim": 64, "transformer_layers_per_block": 1, "use_linear_projection": True,
             "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
             "projection_class_embeddings_input_dim": 6 * 8 + 32},
    "vae": _TINY_VAE, "text_encoder": _TINY_TEXT, "text_encoder_2": _TINY_TEXT,
}
LLAMA_TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 256}

CONFIGS = {"sd15": (SD15_REAL, SD15_TINY), "sdxl": (SDXL_REAL, SDXL_TINY), "llama": (LLAMA_REAL, LLAMA_TINY)}


def build(model: str, tiny: bool, dest: Path, dtype, device: str) -> bool:
    """Build `model` (sd15, sdxl, llama) into dest unless it is there; whether it was built now. Weights are
    initialised on `device` (seconds for billions of parameters on a GPU) and saved in `dtype`."""
    if dest.is_dir():
        return False
    part = dest.with_name(dest.name + ".part")  # a build cut short by a timeout is never taken for whole
    shutil.rmtree(part, ignore_errors=True)
    config = CONFIGS[model][1 if tiny else 0]
    (_build_llama if model == "llama" else _build_pipeline)(config, part, dtype, device)
    part.rename(dest)
    return True


def _build_pipeline(configs: dict, dest: Path, dtype, device: str) -> None:
    import torch
    from diffusers import (
        AutoencoderKL,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from engine import builtin
    from engine.builtin.diffusion import scheduler

    tokenizer = CLIPTokenizer.from_pretrained(builtin.path("builtin:tiny-sd"), subfolder="tokenizer")
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(0)
    with torch.device(device):
        parts = {"unet": UNet2DConditionModel(**configs["unet"]), "vae": AutoencoderKL(**configs["vae"]),
                 "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"], **ids))}
        if "text_encoder_2" in configs:
            parts["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(**configs["text_encoder_2"], **ids))
    parts = {name: module.to("cpu", dtype) for name, module in parts.items()}
    if "text_encoder_2" in parts:
        pipe = StableDiffusionXLPipeline(**parts, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler())
    else:
        pipe = StableDiffusionPipeline(**parts, tokenizer=tokenizer, scheduler=scheduler(), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(dest, safe_serialization=True)


def _build_llama(config: dict, dest: Path, dtype, device: str) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from engine import builtin

    tokenizer = AutoTokenizer.from_pretrained(builtin.path("builtin:tiny-llama"))
    tokenizer.model_max_length = config["max_position_embeddings"]
    full = {"vocab_size": len(tokenizer), **config, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": False}
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**full))
    model.to("cpu", dtype).save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def write_texts(dest: Path, rows: int, words_per_row: int) -> Path:
    """A jsonl of `rows` plain texts of random words from the built-in vocabulary (text format)."""
    from engine.builtin import words

    vocab = [*words.COLOURS, *words.SHAPES, *words.SIZES, *words.VERBS, *words.THINGS, "the", "a", "and", "then"]
    rng = random.Random(0)
    dest.write_text("".join(json.dumps({"text": " ".join(rng.choices(vocab, k=words_per_row))}) + "\n"
                            for _ in range(rows)))
    return dest
