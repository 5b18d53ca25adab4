"""tiny-sd-shapes: tiny-sd's shape at 32 px, trained at build time to draw the shapes on their light background.

A LoRA then visibly teaches it something it cannot do (the shapes-night dataset: the same shapes on a dark
background), which a randomly initialised model cannot show. Everything is seeded and runs on the CPU in a
minute or two; a progress bar shows on a terminal.
"""

import random
import sys
from pathlib import Path

from engine.builtin.bpe import clip_tokenizer
from engine.builtin.data import BACKGROUND, NIGHT, draw
from engine.builtin.diffusion import TEXT_HIDDEN, scheduler, text_encoder
from engine.builtin.seeded import seeded
from engine.builtin.words import COLOURS, SHAPES, caption

SEED = 3
RESOLUTION = 32
IMAGES = 384
VAE_STEPS = 160
VAE_BATCH = 16
UNET_STEPS = 300
UNET_BATCH = 16
LEARNING_RATE = 2e-3
# The VAE, like SD's, encodes images its UNet never learned to draw: the UNet sees only light backgrounds.
VAE_BACKGROUNDS = (BACKGROUND, NIGHT)
CAPTION_DROPOUT = 0.1  # some empty captions, so classifier-free guidance has an unconditional model to lean on


def _images(backgrounds):
    """IMAGES random shapes at RESOLUTION px in [-1, 1], on the backgrounds in turn, with their captions."""
    import numpy as np
    import torch
    from PIL import Image

    rng = random.Random(SEED + len(backgrounds))
    pixels, captions = [], []
    for i in range(IMAGES):
        colour, shape = rng.choice(list(COLOURS)), SHAPES[i % len(SHAPES)]
        image = draw(rng, colour, shape, backgrounds[i % len(backgrounds)])[0]
        pixels.append(np.asarray(image.resize((RESOLUTION, RESOLUTION), Image.BILINEAR), dtype=np.float32) / 127.5 - 1)
        captions.append(caption(colour, shape))
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous(), captions


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="building builtin:tiny-sd-shapes", unit="step", leave=False,
                disable=not sys.stderr.isatty(), file=sys.stderr)


def _vae():
    import torch
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, layers_per_block=1,
                        norm_num_groups=8, sample_size=RESOLUTION)
    # A deterministic encoder: the log-variance half of quant_conv is pinned at diffusers' floor (-30), so a
    # trainer's latent_dist.sample() is its mean, and quant_conv is left out of training (_train_vae).
    logvar = slice(vae.config.latent_channels, None)
    with torch.no_grad():
        vae.quant_conv.weight[logvar] = 0
        vae.quant_conv.bias[logvar] = -30
    return vae


def _unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=RESOLUTION // 2, in_channels=4, out_channels=4,
                                block_out_channels=(32, 64), layers_per_block=1,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=2,
                                # Groups of 4-8 channels, as SD's 10: at one channel a group (tiny-sd's 32
                                # groups of 32), a feature map's overall level, the background's colour, is
                                # normalised away in every block.
                                norm_num_groups=8, cross_attention_dim=TEXT_HIDDEN)


def _batches(generator, count: int, steps: int, batch: int):
    import torch

    for _ in range(steps):
        yield torch.randint(0, count, (batch,), generator=generator)


def _train_vae(vae, pixels, bar):
    import torch

    generator = torch.Generator().manual_seed(SEED)
    params = [p for name, p in vae.named_parameters() if not name.startswith("quant_conv.")]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
    for rows in _batches(generator, len(pixels), VAE_STEPS, VAE_BATCH):
        decoded = vae.decode(vae.encode(pixels[rows]).latent_dist.mean).sample
        loss = torch.nn.functional.mse_loss(decoded, pixels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.update()


def _train_unet(unet, encoder, tokenizer, latents, captions, bar):
    import torch

    generator = torch.Generator().manual_seed(SEED + 1)
    noise_schedule = scheduler()
    captions = [c if random.Random(SEED + i).random() >= CAPTION_DROPOUT else "" for i, c in enumerate(captions)]
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    params = [*unet.parameters(), *encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
    lr = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, UNET_STEPS)
    for rows in _batches(generator, len(latents), UNET_STEPS, UNET_BATCH):
        noise = torch.randn(latents[rows].shape, generator=generator)
        timesteps = torch.randint(0, noise_schedule.config.num_train_timesteps, (len(rows),), generator=generator)
        noisy = noise_schedule.add_noise(latents[rows], noise, timesteps)
        pred = unet(noisy, timesteps, encoder(ids[rows])[0]).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr.step()
        bar.update()


def build_sd_shapes(dest: Path) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    tokenizer = clip_tokenizer()
    with seeded(SEED), _progress(VAE_STEPS + UNET_STEPS) as bar:
        vae, encoder, unet = _vae(), text_encoder(tokenizer, projection=False), _unet()
        _train_vae(vae, _images(VAE_BACKGROUNDS)[0], bar)
        pixels, captions = _images((BACKGROUND,))
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.mean
        # SD's scaling factor: the one that gives the training latents unit variance.
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
        _train_unet(unet, encoder, tokenizer, latents * vae.config.scaling_factor, captions, bar)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        with torch.no_grad():
            pipe.save_pretrained(dest, safe_serialization=True)
