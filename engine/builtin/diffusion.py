"""tiny-sd and tiny-sdxl: randomly initialised pipelines shaped like SD 1.5 and SDXL, small enough for CPU."""

from pathlib import Path

from engine.builtin.bpe import clip_tokenizer
from engine.builtin.seeded import seeded

SEED = 0
TEXT_HIDDEN = 32
TIME_EMBED_DIM = 8


def scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
    )


def _vae():
    from diffusers import AutoencoderKL

    # Two blocks give a VAE scale factor of 2: sample_size 32 latents decode to 64 px images. Two layers per
    # block, as in SD's VAE, keep encoding's share of a training step close to SD's (which the cache saves).
    return AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        sample_size=64,
    )


def text_encoder(tokenizer, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=TEXT_HIDDEN,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _unet(**extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        # diffusers reads this as the number of heads: two 32-wide heads, like SD's 40-160 wide ones (eight
        # 8-wide heads made attention mostly softmax, a third of a CPU step, unlike any real model).
        attention_head_dim=2,
        norm_num_groups=32,
        **extra,
    )


def build_sd(dest: Path) -> None:
    from diffusers import StableDiffusionPipeline

    tokenizer = clip_tokenizer()
    with seeded(SEED):
        pipe = StableDiffusionPipeline(
            vae=_vae(),
            text_encoder=text_encoder(tokenizer, projection=False),
            tokenizer=tokenizer,
            unet=_unet(cross_attention_dim=TEXT_HIDDEN),
            scheduler=scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(dest, safe_serialization=True)


def build_sdxl(dest: Path) -> None:
    from diffusers import StableDiffusionXLPipeline

    tokenizer = clip_tokenizer()
    with seeded(SEED):
        text_encoder_2 = text_encoder(tokenizer, projection=True)
        # SDXL conditions on the pooled text embedding plus six size/crop numbers, each embedded in TIME_EMBED_DIM.
        pipe = StableDiffusionXLPipeline(
            vae=_vae(),
            text_encoder=text_encoder(tokenizer, projection=False),
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=_unet(
                cross_attention_dim=2 * TEXT_HIDDEN,
                transformer_layers_per_block=1,
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=TIME_EMBED_DIM,
                projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + text_encoder_2.config.projection_dim,
            ),
            scheduler=scheduler(),
        )
        pipe.save_pretrained(dest, safe_serialization=True)
