"""Latent and text-embedding caches: encode once what a frozen VAE or text encoder would encode every step.

Latents are cached when every crop is fixed (center_crop, or images that resize to exactly the square), for
both orientations when random_flip is on. The mean and std of the VAE's latent distribution are kept, so
each step still draws its own latent sample, as encoding every step would. Text embeddings are cached when
the text encoder does not train. Caches are files under LORATUI_HOME/cache, keyed on the data, the model,
the resolution and the augmentation, so the next run on the same data starts at once.
"""

import hashlib
import json
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine import data
from engine.home import home

CACHE_VERSION = 1
MAX_CACHE_BYTES = 8 << 30  # beyond this, encoding every step beats holding it all in memory


@dataclass
class Caches:
    latent_mean: torch.Tensor | None = None
    latent_std: torch.Tensor | None = None
    geometry: list[tuple[int, int, int, int]] = field(default_factory=list)  # original h, w, crop top, left
    flips: int = 1
    prompt_embeds: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    caption_index: dict[str, int] = field(default_factory=dict)

    def latent_index(self, row: int, flipped: bool) -> int:
        return row * self.flips + int(flipped)


def build_caches(task, rows, log) -> Caches:
    caches = Caches()
    spec = task.spec
    if not spec.train.cache:
        return caches
    # The main process encodes and writes the files; the others then read them.
    with task.accelerator.main_process_first():
        if not spec.lora.train_text_encoder:
            _text_cache(task, rows, caches, log)
        _latent_cache(task, rows, caches, log)
    return caches


def _key(kind: str, task, rows, modules) -> str:
    train = task.spec.train
    fingerprint = {
        "kind": kind, "version": CACHE_VERSION, "family": task.family,
        "data": [getattr(rows, "_fingerprint", None), len(rows), task.spec.data.image_column,
                 task.spec.data.caption_column],
        "augment": [train.resolution, train.center_crop, train.random_flip, train.interpolation],
        "models": [_module_fingerprint(m) for m in modules],
    }
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _module_fingerprint(module) -> list:
    """Config, dtype, and sums of a sample of the weights: a different model or a fine-tune changes it."""
    params = list(module.parameters())[::8]
    with torch.no_grad():
        sums = [round(float(p.float().sum()), 4) for p in params]
    return [module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config),
            str(params[0].dtype), sums]


def _cache_file(kind: str, key: str):
    folder = home() / "cache" / "text-to-image"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{key}.safetensors"


def _load(path) -> dict | None:
    try:
        return load_file(path)
    except (OSError, ValueError, RuntimeError):
        return None  # absent, or torn by a crash: rebuild


def _save(path, tensors: dict) -> None:
    tmp = path.with_name(f".{path.name}.{random.getrandbits(32):08x}.tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
    tmp.replace(path)


def _captions(rows, column: str) -> list[str]:
    found = set()
    for value in rows[column]:
        found.update([value] if isinstance(value, str) else value)
    return sorted(found)


def _text_cache(task, rows, caches: Caches, log) -> None:
    captions = _captions(rows, task.spec.data.caption_column)
    hidden_size = sum(e.config.hidden_size for e in task.text_encoders)
    if len(captions) * task.tokenizers[0].model_max_length * hidden_size * 4 > MAX_CACHE_BYTES:
        log("info", f"text embeddings not cached: {len(captions)} captions would take too much memory")
        return
    path = _cache_file("text", _key("text", task, rows, [*task.text_encoders]))
    tensors = _load(path)
    if tensors is None:
        hidden, pooled = [], []
        with torch.no_grad():
            for start in range(0, len(captions), 32):
                ids = task.tokenize(captions[start:start + 32]).to(task.accelerator.device)
                h, p = task.encode_text(ids)
                hidden.append(h.cpu())
                pooled.append(p.cpu() if p is not None else None)
        tensors = {"prompt_embeds": torch.cat(hidden)}
        if pooled[0] is not None:
            tensors["pooled"] = torch.cat(pooled)
        _save(path, tensors)
    caches.prompt_embeds, caches.pooled = tensors["prompt_embeds"], tensors.get("pooled")
    caches.caption_index = {caption: i for i, caption in enumerate(captions)}
    log("info", f"text embeddings cached for {len(captions)} captions")


def _latent_cache(task, rows, caches: Caches, log) -> None:
    train = task.spec.train
    flips = 2 if train.random_flip else 1
    path = _cache_file("latents", _key("latents", task, rows, [task.vae]))
    tensors = _load(path)
    if tensors is None:
        tensors = _encode_latents(task, rows, flips, log)
        if tensors is None:
            return
        _save(path, tensors)
    caches.latent_mean, caches.latent_std = tensors["mean"], tensors["std"]
    caches.geometry = [tuple(g) for g in tensors["geometry"].tolist()]
    caches.flips = flips
    log("info", f"latents cached for {len(rows)} images x {flips} orientation(s)")


def _encode_latents(task, rows, flips: int, log) -> dict | None:
    train = task.spec.train
    column = task.spec.data.image_column
    images = rows.select_columns([column])
    factor = 2 ** (len(task.vae.config.block_out_channels) - 1)
    per_image = flips * 2 * task.vae.config.latent_channels * (train.resolution // factor) ** 2 * 4
    if len(rows) * per_image > MAX_CACHE_BYTES:
        log("info", f"latents not cached: {len(rows)} images would take too much memory")
        return None
    means, stds, geometry, pending = [], [], [], []

    def flush():
        pixels = torch.from_numpy(np.stack(pending)).to(task.accelerator.device, dtype=task.vae.dtype)
        with torch.no_grad():
            dist = task.vae.encode(pixels).latent_dist
        means.append(dist.mean.cpu())
        stds.append(dist.std.cpu())
        pending.clear()

    for row in range(len(rows)):
        image = images[row][column]
        short, long = sorted(image.size)
        if not train.center_crop and int(train.resolution * long / short) != train.resolution:
            log("info", "latents not cached: random crops of non-square images differ every epoch")
            return None
        for flipped in (False, True)[:flips]:
            # The crop is fixed here, so a throwaway generator draws nothing that matters.
            pixels, original, crop = data.augment(image, train.resolution, train.center_crop, flipped,
                                                  train.interpolation, random.Random(0))
            pending.append(pixels)
            geometry.append((*original, *crop))
            if len(pending) == 16:
                flush()
    if pending:
        flush()
    return {"mean": torch.cat(means), "std": torch.cat(stds), "geometry": torch.tensor(geometry)}
