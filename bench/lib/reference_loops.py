"""Plain PyTorch + peft training loops to hold the engine against, on the same model folder, data, batch and
precision: text-to-image as diffusers' train_text_to_image_lora(_sdxl).py runs it (the VAE and the text
encoders every step), causal-lm as transformers' run_clm.py packs text (tokens concatenated and cut into
max_length blocks). Each returns (seconds of each step, peak CUDA memory or None on CPU); a step ends with the
loss read by .item(), as those scripts log it."""

import csv
import time
from pathlib import Path

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "no": "float32"}


def _start(precision: str):
    import torch
    from accelerate import Accelerator

    torch.manual_seed(0)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    return Accelerator(mixed_precision=precision), getattr(torch, DTYPES[precision])


def _peak():
    import torch

    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def _images(folder: Path, rows: int, resolution: int):
    """(pixels in [-1, 1], caption) of the imagefolder's first rows, decoded and resized once."""
    import numpy as np
    import torch
    from PIL import Image

    with open(folder / "metadata.csv", newline="") as handle:
        found = list(csv.DictReader(handle))[:rows]
    size = (resolution, resolution)
    pixels = [np.asarray(Image.open(folder / r["file_name"]).convert("RGB").resize(size), dtype=np.float32)
              for r in found]
    return [(torch.from_numpy(p / 127.5 - 1).permute(2, 0, 1), r["text"]) for p, r in zip(pixels, found, strict=True)]


def text_to_image(model: Path, images: Path, rows: int, resolution: int, batch: int, steps: int, precision: str,
                  checkpointing: bool) -> tuple[list[float], int | None]:
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from engine.tasks.text_to_image.spec import Lora

    accelerator, dtype = _start(precision)
    device = accelerator.device
    sdxl = (model / "text_encoder_2").is_dir()
    names = ["text_encoder", "text_encoder_2"] if sdxl else ["text_encoder"]
    noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    tokenizers = [CLIPTokenizer.from_pretrained(model, subfolder=n.replace("text_encoder", "tokenizer")) for n in names]
    encoders = [cls.from_pretrained(model, subfolder=n).to(device, dtype)
                for cls, n in zip((CLIPTextModel, CLIPTextModelWithProjection), names, strict=False)]
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae").to(device, torch.float32 if sdxl else dtype)
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet").to(device, dtype)
    for frozen in (vae, unet, *encoders):
        frozen.requires_grad_(False)
    lora = Lora()
    unet.add_adapter(LoraConfig(r=lora.rank, lora_alpha=lora.alpha, init_lora_weights="gaussian",
                                target_modules=lora.target_modules))
    cast_training_params(unet, dtype=torch.float32)  # the LoRA weights train in fp32, as the scripts keep them
    if checkpointing:
        unet.enable_gradient_checkpointing()
    params = [p for p in unet.parameters() if p.requires_grad]
    unet, optimizer = accelerator.prepare(unet, torch.optim.AdamW(params, lr=1e-4))
    data = _images(images, rows, resolution)
    time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch, device=device)

    def encode(captions: list[str]):
        hidden, pooled = [], None
        for tokenizer, encoder in zip(tokenizers, encoders, strict=True):
            ids = tokenizer(captions, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                            return_tensors="pt").input_ids.to(device)
            out = encoder(ids, output_hidden_states=True)
            hidden.append(out.hidden_states[-2] if sdxl else out[0])
            pooled = out[0]
        return torch.cat(hidden, dim=-1), pooled

    times = []
    for step in range(steps):
        start = time.perf_counter()
        pixels, captions = zip(*(data[(step * batch + i) % len(data)] for i in range(batch)), strict=True)
        latents = vae.encode(torch.stack(pixels).to(device, vae.dtype)).latent_dist.sample()
        latents = (latents * vae.config.scaling_factor).to(dtype)
        hidden, pooled = encode(list(captions))
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,), device=device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        extra = {"added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids.to(dtype)}} if sdxl else {}
        pred = unet(noisy, timesteps, hidden, return_dict=False, **extra)[0]
        loss = F.mse_loss(pred.float(), noise.float())
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - start)
    return times, _peak()


def causal_lm(model: Path, texts: list[str], max_length: int, batch: int, steps: int, precision: str,
              checkpointing: bool, quantized: bool) -> tuple[list[float], int | None]:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from engine.tasks.causal_lm.spec import Lora

    accelerator, dtype = _start(precision)
    tokenizer = AutoTokenizer.from_pretrained(model)
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                                      bnb_4bit_use_double_quant=True) if quantized else None
    base = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, quantization_config=quantization)
    if quantized:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    lora = Lora()
    net = get_peft_model(base, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                                          task_type="CAUSAL_LM"))
    tokens = [i for text in texts for i in [*tokenizer(text).input_ids, tokenizer.eos_token_id]]
    blocks = [tokens[i:i + max_length] for i in range(0, len(tokens) - max_length + 1, max_length)]
    params = [p for p in net.parameters() if p.requires_grad]
    net, optimizer = accelerator.prepare(net, torch.optim.AdamW(params, lr=2e-4))
    net.train()
    times = []
    for step in range(steps):
        start = time.perf_counter()
        ids = torch.tensor([blocks[(step * batch + i) % len(blocks)] for i in range(batch)], device=accelerator.device)
        loss = net(input_ids=ids, labels=ids, use_cache=False).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - start)
    return times, _peak()
