"""Text-to-image LoRA for Stable Diffusion 1.x/2.x and SDXL: load, attach LoRA, build examples, loss, samples, save.

The math is that of diffusers' train_text_to_image_lora(_sdxl).py; the family comes from model_index.json.
"""

import inspect
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import cast_training_params, compute_snr
from diffusers.utils.torch_utils import randn_tensor
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from engine import data
from engine.checkpoint import save_safetensors
from engine.errors import LoratuiError, first_line
from engine.lora_config import peft_config
from engine.memory import enable_activation_checkpointing
from engine.tasks import Sample, registry
from engine.tasks.text_to_image.cache import Caches, build_caches
from engine.tasks.text_to_image.evaluation import eval_losses
from engine.tasks.text_to_image.model_info import model_info

WEIGHT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
RESIZED_IMAGES_BYTES = 1 << 30  # decoded, resized training images kept in memory when latents are not cached


class Trainer:
    varying_lengths = False
    samples_base = True  # the LoRA starts as a no-op (B = 0), so a step-0 sample is the base model's

    def __init__(self, spec, accelerator, rows, log) -> None:
        self.spec, self.accelerator = spec, accelerator
        info = model_info(spec.model.pretrained, spec.model.revision)
        self.family = info.family
        self.kind = registry.family(info.family)  # what the family's pipeline needs (engine/tasks/text_to_image/families)
        self.ref = spec.model.pretrained if _is_hub(spec.model.pretrained) else str(info.folder)
        self.model_index = json.loads((info.folder / "model_index.json").read_text())
        self.weight_dtype = WEIGHT_DTYPES.get(accelerator.mixed_precision, torch.float32)
        self._load_models()
        self._attach_lora()
        self.caches = build_caches(self, rows, log)
        self.dataset = Examples(self, rows, self.caches)
        validation = spec.validation
        self.sample_schedule = (validation.every_steps, validation.every_epochs) if validation.prompt else None

    # -- models ------------------------------------------------------------------------------------------
    def _load_models(self) -> None:
        spec, ref, device = self.spec, self.ref, self.accelerator.device
        kw = {"revision": spec.model.revision or None}
        weights = {**kw, "variant": spec.model.variant or None}
        self.noise_scheduler = DDPMScheduler.from_pretrained(ref, subfolder="scheduler", **kw)
        if spec.train.prediction_type:
            self.noise_scheduler.register_to_config(prediction_type=spec.train.prediction_type)
        names = list(self.kind.text_encoders)
        classes = [CLIPTextModel, CLIPTextModelWithProjection]
        self.tokenizers = [CLIPTokenizer.from_pretrained(ref, subfolder=n.replace("text_encoder", "tokenizer"), **kw)
                           for n in names]
        self.text_encoders = [cls.from_pretrained(ref, subfolder=n, **weights) for cls, n in zip(classes, names, strict=False)]
        self.encoder_names = names
        self.encoders = dict(zip(names, self.text_encoders, strict=True))
        self.vae = AutoencoderKL.from_pretrained(ref, subfolder="vae", **weights)
        self.unet = UNet2DConditionModel.from_pretrained(ref, subfolder="unet", **weights)
        # Frozen models only run forward: half precision is enough, except a VAE that overflows in fp16 (SDXL's).
        vae_dtype = torch.float32 if self.kind.vae_float32 else self.weight_dtype
        for model in (self.vae, self.unet, *self.text_encoders):
            model.requires_grad_(False)
        self.vae.to(device, dtype=vae_dtype)
        self.unet.to(device, dtype=self.weight_dtype)
        for encoder in self.text_encoders:
            encoder.to(device, dtype=self.weight_dtype)

    def _attach_lora(self) -> None:
        lora = self.spec.lora
        self.modules = {"unet": self.unet}
        _add_adapter(self.unet, peft_config(lora), "target_modules")
        if lora.train_text_encoder:
            for name, encoder in self.encoders.items():
                _add_adapter(encoder, peft_config(lora, target_modules=lora.text_encoder_target_modules),
                             "text_encoder_target_modules")
                self.modules[name] = encoder
        self.prepared = dict(self.modules)
        if self.weight_dtype != torch.float32:
            cast_training_params(list(self.modules.values()), dtype=torch.float32)
        if self.spec.train.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            for name in self.modules.keys() - {"unet"}:
                enable_activation_checkpointing(self.modules[name])
        for module in self.modules.values():
            module.train()

    def trainable_modules(self) -> list:
        return list(self.modules.values())

    def use_prepared(self, modules: list) -> None:
        self.prepared = dict(zip(self.modules, modules, strict=True))

    def parameters(self) -> list:
        return [p for module in self.modules.values() for p in module.parameters() if p.requires_grad]

    def _forward_module(self, name: str):
        """The prepared (possibly DDP-wrapped) module when it trains, so its gradients are synchronised."""
        return self.prepared[name] if name in self.prepared else self.encoders[name]

    # -- examples ----------------------------------------------------------------------------------------
    def tokenize(self, captions: list[str]) -> torch.Tensor:
        """(batch, tokenizers, tokens) ids."""
        ids = [tok(captions, max_length=tok.model_max_length, padding="max_length", truncation=True,
                   return_tensors="pt").input_ids for tok in self.tokenizers]
        return torch.stack(ids, dim=1)

    def encode_text(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt embeddings, and the pooled embedding a family with added conditions (SDXL) also takes."""
        if not self.kind.added_conditions:
            return self._forward_module("text_encoder")(input_ids[:, 0], return_dict=False)[0], None
        hidden, pooled = [], None
        for index, name in enumerate(self.encoder_names):
            out = self._forward_module(name)(input_ids[:, index], output_hidden_states=True, return_dict=True)
            hidden.append(out.hidden_states[-2])
            pooled = out[0]  # from the last encoder: its projected text embedding
        return torch.cat(hidden, dim=-1), pooled

    def collate(self, examples: list[dict]) -> dict:
        batch = {}
        caches = self.caches
        if "latent" in examples[0]:
            index = torch.tensor([e["latent"] for e in examples])
            batch["latent_mean"], batch["latent_std"] = caches.latent_mean[index], caches.latent_std[index]
        else:
            batch["pixels"] = torch.from_numpy(np.stack([e["pixels"] for e in examples]))
        if "text" in examples[0]:
            index = torch.tensor([e["text"] for e in examples])
            batch["prompt_embeds"] = caches.prompt_embeds[index]
            if caches.pooled is not None:
                batch["pooled"] = caches.pooled[index]
        else:
            batch["input_ids"] = self.tokenize([e["caption"] for e in examples])
        if self.kind.added_conditions:
            batch["time_ids"] = torch.tensor([e["time_ids"] for e in examples], dtype=torch.float32)
        if "row" in examples[0]:
            batch["rows"] = torch.tensor([e["row"] for e in examples])
        return batch

    # -- loss --------------------------------------------------------------------------------------------
    def loss(self, batch: dict, generator) -> torch.Tensor:
        return self._losses(batch, generator).mean()

    def _losses(self, batch: dict, generator) -> torch.Tensor:
        """The loss of each example of the batch."""
        train, device = self.spec.train, self.accelerator.device
        if "latent_mean" in batch:
            mean, std = batch["latent_mean"], batch["latent_std"]
            latents = mean + std * randn_tensor(mean.shape, generator=generator, device=device, dtype=mean.dtype)
        else:
            pixels = batch["pixels"].to(device, dtype=self.vae.dtype)
            latents = self.vae.encode(pixels).latent_dist.sample(generator=generator)
        latents = (latents * self.vae.config.scaling_factor).to(self.weight_dtype)
        noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        if train.noise_offset:
            offset = torch.randn((*latents.shape[:2], 1, 1), generator=generator, device=device, dtype=latents.dtype)
            noise = noise + train.noise_offset * offset
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (latents.shape[0],), generator=generator, device=device).long()
        if "prompt_embeds" in batch:
            hidden, pooled = batch["prompt_embeds"], batch.get("pooled")
        else:
            hidden, pooled = self.encode_text(batch["input_ids"].to(device))
        return self.denoising_losses(latents, noise, timesteps, hidden, pooled, batch.get("time_ids"))

    def denoising_losses(self, latents, noise, timesteps, hidden, pooled, time_ids, weighted: bool = True):
        """The loss of each example noised with `noise` at `timesteps` (min-SNR weighted if the spec says and
        `weighted`)."""
        train, device = self.spec.train, self.accelerator.device
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        extra = {}
        if self.kind.added_conditions:
            extra["added_cond_kwargs"] = {"text_embeds": pooled.to(device, dtype=self.weight_dtype),
                                          "time_ids": time_ids.to(device, dtype=self.weight_dtype)}
        prediction = self.noise_scheduler.config.prediction_type
        if prediction == "epsilon":
            target = noise
        elif prediction == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise LoratuiError(f"the model's scheduler predicts '{prediction}'",
                               hint='set train.prediction_type = "epsilon" or "v_prediction"')
        pred = self.prepared["unet"](noisy, timesteps, hidden.to(device, dtype=self.weight_dtype), return_dict=False,
                                     **extra)[0]
        loss = F.mse_loss(pred.float(), target.float(), reduction="none")
        loss = loss.mean(dim=list(range(1, loss.ndim)))
        if not (weighted and train.snr_gamma):
            return loss
        # Min-SNR weighting (arXiv 2303.09556), as the seed script computes it.
        snr = compute_snr(self.noise_scheduler, timesteps)
        weights = torch.stack([snr, train.snr_gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
        return loss * weights / (snr if prediction == "epsilon" else snr + 1)

    # -- evaluation: the loss on held-out rows at fixed noise and timesteps (evaluation.py) -----------------
    def eval_examples(self, rows) -> "Examples":
        return Examples(self, rows, Caches(), held_out=True)

    def eval_step(self, batch: dict) -> dict:
        return {"loss": eval_losses(self, batch)}

    def metrics(self, outputs: dict) -> dict[str, float]:
        return {"eval_loss": outputs["loss"].mean().item()}

    # -- state -------------------------------------------------------------------------------------------
    def _unwrapped(self) -> dict:
        return {name: self.accelerator.unwrap_model(m) for name, m in self.modules.items()}

    def lora_state(self) -> dict:
        return {f"{name}.{key}": value for name, module in self._unwrapped().items()
                for key, value in get_peft_model_state_dict(module).items()}

    def load_lora_state(self, state: dict) -> None:
        for name, module in self._unwrapped().items():
            part = {k.removeprefix(f"{name}."): v for k, v in state.items() if k.startswith(f"{name}.")}
            result = set_peft_model_state_dict(module, part, adapter_name="default")
            missing = [k for k in result.missing_keys if "lora_" in k]
            if missing or result.unexpected_keys or not part:
                raise LoratuiError(f"checkpoint LoRA weights do not fit the {name}: "
                                   f"{len(missing)} missing, {len(result.unexpected_keys)} unexpected",
                                   hint="resume with the spec the checkpoint was made with (same model and [lora])")

    def adapter_metadata(self) -> dict[str, str]:
        lora = self.spec.lora
        targets = lora.target_modules if isinstance(lora.target_modules, str) else ",".join(lora.target_modules)
        return {"loratui.family": self.family, "loratui.target_modules": targets,
                "loratui.text_encoder_target_modules": ",".join(lora.text_encoder_target_modules)
                if lora.train_text_encoder else ""}

    def save_adapter(self, folder: Path, metadata: dict[str, str]) -> Path:
        import diffusers

        modules = self._unwrapped()
        # PEFT's own keys (lora_A/lora_B), which load_lora_weights reads as they are: diffusers'
        # convert_state_dict_to_diffusers renames only attention layers, and a file mixing both spellings loads
        # without its attention LoRAs.
        layers = {f"{name}_lora_layers": get_peft_model_state_dict(m) for name, m in modules.items()}
        # diffusers reads each component's LoraConfig back from this header key (alpha, targets).
        configs = {f"{name}.{k}": v for name, m in modules.items()
                   for k, v in m.peft_config["default"].to_dict().items()}
        header = {"format": "pt", "lora_adapter_metadata": json.dumps(configs, default=_jsonable, sort_keys=True),
                  **metadata}
        getattr(diffusers, self.kind.model_class).save_lora_weights(folder, **layers, save_function=lambda sd, path: save_safetensors(sd, path, header))
        return folder / "pytorch_lora_weights.safetensors"

    # -- samples -----------------------------------------------------------------------------------------
    def sample(self, step: int, folder: Path) -> list[Sample]:
        import diffusers

        validation, train = self.spec.validation, self.spec.train
        modules = self._unwrapped()
        encoders = [modules.get(n, e) for n, e in self.encoders.items()]
        # Sample with the scheduler the model ships with, as its pipeline would.
        scheduler_class = getattr(diffusers, self.model_index.get("scheduler", [None, ""])[1], DDPMScheduler)
        scheduler = scheduler_class.from_config(self.noise_scheduler.config)
        parts = {"vae": self.vae, "unet": modules["unet"], "scheduler": scheduler,
                 "text_encoder": encoders[0], "tokenizer": self.tokenizers[0]}
        for number, (encoder, tokenizer) in enumerate(zip(encoders[1:], self.tokenizers[1:], strict=True), 2):
            parts[f"text_encoder_{number}"], parts[f"tokenizer_{number}"] = encoder, tokenizer
        pipeline = getattr(diffusers, self.kind.model_class)
        if "safety_checker" in inspect.signature(pipeline).parameters:  # SD 1.x/2.x: none, and no warning
            parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe = pipeline(**parts)
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator(self.accelerator.device).manual_seed(train.seed)
        for module in modules.values():
            module.eval()
        try:
            with torch.no_grad(), self.accelerator.autocast():
                images = pipe(validation.prompt, negative_prompt=validation.negative_prompt or None,
                              num_inference_steps=validation.num_inference_steps,
                              guidance_scale=validation.guidance_scale, height=train.resolution,
                              width=train.resolution, num_images_per_prompt=validation.num_images,
                              generator=generator).images
        finally:
            for module in modules.values():
                module.train()
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for i, image in enumerate(images):
            path = folder / f"step-{step:06d}-{i}.png"
            image.save(path)
            saved.append(Sample(path, validation.prompt))
        return saved


class Examples:
    """Rows -> examples. Keys are (epoch, row); each random choice uses its own (seed, epoch, row) generator."""

    def __init__(self, task: Trainer, rows, caches: Caches, held_out: bool = False) -> None:
        self.task, self.caches = task, caches
        self.held_out = held_out  # its examples keep their row: their evaluation noise is seeded by it
        self.spec = task.spec
        self.captions = list(rows[self.spec.data.caption_column])  # a list, not an Arrow read per example
        train, column = self.spec.train, self.spec.data.image_column
        # Each loading process keeps its own copies: the budget is shared out between them.
        budget = RESIZED_IMAGES_BYTES // max(1, train.dataloader_num_workers)
        self.images = data.ResizedImages(rows.select_columns([column]), column, train.resolution,
                                         train.interpolation, budget)

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, key) -> dict:
        epoch, row = key
        train, seed, caches = self.spec.train, self.spec.train.seed, self.caches
        caption = data.pick_caption(self.captions[row], data.row_rng(seed, epoch, row, "caption"),
                                    self.spec.data.caption_column)
        flipped = train.random_flip and data.row_rng(seed, epoch, row, "flip").random() < 0.5
        example = {"caption": caption}
        if caches.latent_mean is not None:
            example["latent"] = caches.latent_index(row, flipped)
            geometry = caches.geometry[example["latent"]]
        else:
            image, original = self.images.get(row)
            example["pixels"], original, crop = data.flip_and_crop(
                image, original, train.resolution, train.center_crop, flipped, data.row_rng(seed, epoch, row, "crop"))
            geometry = (*original, *crop)
        if caches.prompt_embeds is not None:
            example["text"] = caches.caption_index[caption]
        example["time_ids"] = [*geometry, train.resolution, train.resolution]
        if self.held_out:
            example["row"] = row
        return example


def _add_adapter(model, config, field: str) -> None:
    try:
        model.add_adapter(config)
    except ValueError as exc:
        raise LoratuiError(f"lora.{field}: {first_line(exc)}",
                           hint="name Linear layers of the model, e.g. to_q, to_k, to_v, to_out.0 for a UNet") from None


def _is_hub(ref: str) -> bool:
    return not ref.startswith("builtin:") and not Path(ref).expanduser().exists()


def _jsonable(value):
    return sorted(value) if isinstance(value, set) else str(value)
