"""Latent and text-embedding caches: encode once what a frozen VAE or text encoder would encode every step.

Latents are cached when every crop is fixed (center_crop, or images that resize to exactly the square), for
both orientations when random_flip is on. The mean and std of the VAE's latent distribution are kept, so
each step still draws its own latent sample, as encoding every step would. Text embeddings are cached when
the text encoder does not train.

Every entry is keyed by its content: an image by the sha256 of its bytes, a caption by its text, under a
namespace that holds the model weights' digest and the augmentation. Entries an earlier run encoded come
from the store (cache_store.Store); the rest are shared out in batches between the processes, each encoding
its own, and exchanged through collectives, so machines that share no disk build the same cache. Each
machine's local main process writes the whole table, indexed by dataset row (captions: sorted), into the run
folder, and every process maps it read-only.
"""

import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object

from engine import data
from engine.tasks.text_to_image.cache_store import Store, TableWriter, holds, map_table

CACHE_VERSION = 2
MAX_CACHE_BYTES = 8 << 30  # beyond this, encoding every step beats holding it all in memory
IMAGES_PER_BATCH = 16  # images the VAE encodes at once (both orientations of 8 rows when flipping)
CAPTIONS_PER_BATCH = 32


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


@dataclass
class _Entries:
    """What one cache holds: an entry per key, `encode` giving those at some positions as tensors whose first
    axis follows the positions."""

    name: str  # its folder in the run folder
    label: str  # the cache, for the log
    noun: str  # what an entry is, for the log
    namespace: str
    keys: list[str]
    encode: Callable[[list[int]], dict[str, torch.Tensor]]
    batch: int


def build_caches(task, rows, log) -> Caches:
    caches = Caches()
    if not task.spec.train.cache:
        return caches
    run_folder = task.accelerator.project_configuration.project_dir
    if run_folder is None:
        raise ValueError("caches are assembled in the run folder: give the Accelerator a project_dir")
    folder = Path(run_folder) / "cache"
    if not task.spec.lora.train_text_encoder:
        _text_cache(task, rows, folder, caches, log)
    _latent_cache(task, rows, folder, caches, log)
    return caches


def _text_cache(task, rows, folder: Path, caches: Caches, log) -> None:
    captions = _captions(rows, task.spec.data.caption_column)
    hidden_size = sum(e.config.hidden_size for e in task.text_encoders)
    if len(captions) * task.tokenizers[0].model_max_length * hidden_size * 4 > MAX_CACHE_BYTES:
        log("info", f"text embeddings not cached: {len(captions)} captions would take too much memory")
        return

    def encode(positions: list[int]) -> dict[str, torch.Tensor]:
        ids = task.tokenize([captions[p] for p in positions]).to(task.accelerator.device)
        hidden, pooled = task.encode_text(ids)
        return {"prompt_embeds": hidden.cpu()} | ({} if pooled is None else {"pooled": pooled.cpu()})

    tokenizers = [[len(t), t.model_max_length] for t in task.tokenizers]
    namespace = _namespace(task, "text", task.text_encoders, tokenizers)
    keys = [hashlib.sha256(caption.encode()).hexdigest() for caption in captions]
    entries = _Entries("text", "text embeddings", "captions", namespace, keys, encode, CAPTIONS_PER_BATCH)
    tensors = _assemble(task.accelerator, entries, folder, log)
    caches.prompt_embeds, caches.pooled = tensors["prompt_embeds"], tensors.get("pooled")
    caches.caption_index = {caption: i for i, caption in enumerate(captions)}


def _latent_cache(task, rows, folder: Path, caches: Caches, log) -> None:
    train, column, vae = task.spec.train, task.spec.data.image_column, task.vae
    flips = 2 if train.random_flip else 1
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    per_image = flips * 2 * vae.config.latent_channels * (train.resolution // factor) ** 2 * vae.dtype.itemsize
    if len(rows) * per_image > MAX_CACHE_BYTES:
        log("info", f"latents not cached: {len(rows)} images would take too much memory")
        return
    facts = _image_facts(task.accelerator, rows, column)
    if not train.center_crop and any(int(train.resolution * max(size) / min(size)) != train.resolution
                                     for _, size in facts):
        log("info", "latents not cached: random crops of non-square images differ every epoch")
        return
    images = rows.select_columns([column])

    def encode(positions: list[int]) -> dict[str, torch.Tensor]:
        pixels, geometry = [], []
        for row in positions:
            for flipped in (False, True)[:flips]:
                # The crop is fixed here, so a throwaway generator draws nothing that matters.
                image, original, crop = data.augment(images[row][column], train.resolution, train.center_crop,
                                                     flipped, train.interpolation, random.Random(0))
                pixels.append(image)
                geometry.append((*original, *crop))
        batch = torch.from_numpy(np.stack(pixels)).to(task.accelerator.device, dtype=vae.dtype)
        dist = vae.encode(batch).latent_dist
        shape = (len(positions), flips)
        return {"mean": dist.mean.cpu().unflatten(0, shape), "std": dist.std.cpu().unflatten(0, shape),
                "geometry": torch.tensor(geometry).unflatten(0, shape)}

    augment = [train.resolution, train.center_crop, train.random_flip, train.interpolation]
    entries = _Entries("latents", "latents", "images", _namespace(task, "latents", [vae], augment),
                       [digest for digest, _ in facts], encode, IMAGES_PER_BATCH // flips)
    tensors = _assemble(task.accelerator, entries, folder, log, f", {flips} orientation(s) each")
    caches.latent_mean, caches.latent_std = tensors["mean"].flatten(0, 1), tensors["std"].flatten(0, 1)
    caches.geometry = [tuple(g) for g in tensors["geometry"].flatten(0, 1).tolist()]
    caches.flips = flips


def _assemble(accelerator, entries: _Entries, folder: Path, log, detail: str = "") -> dict[str, torch.Tensor]:
    """The cache's table in the run folder, mapped: stored entries copied, the rest encoded by all processes."""
    store, keys, table = Store(entries.namespace), entries.keys, folder / entries.name
    if all(gather_object([holds(table, entries.namespace, keys)])):
        log("info", f"{entries.label}: {len(keys)} {entries.noun} already in the run folder{detail}")
        return map_table(table)[1]
    found = store.lookup(keys)
    # An entry is reused only where every process's store has it, so all agree on what to encode.
    everywhere = [all(hits) for hits in zip(*gather_object([[key in found for key in keys]]), strict=True)]
    missing = [position for position, hit in enumerate(everywhere) if not hit]
    writer = TableWriter(table, len(keys)) if accelerator.is_local_main_process else None
    pack = store.new_pack(len(missing)) if writer is not None and missing else None
    if writer is not None:
        store.copy({p: found[keys[p]] for p, hit in enumerate(everywhere) if hit}, writer)
    # Batches are the same whatever the number of processes, so every entry is encoded alike by any of them.
    batches = [missing[start:start + entries.batch] for start in range(0, len(missing), entries.batch)]
    n, rank = accelerator.num_processes, accelerator.process_index
    for first in range(0, len(batches), n):
        mine = first + rank
        with torch.no_grad():
            encoded = (mine, entries.encode(batches[mine])) if mine < len(batches) else None
        for item in gather_object([encoded]):
            if item is not None and writer is not None:
                index, tensors = item
                writer.put(batches[index], tensors)
                start = index * entries.batch
                pack.put(list(range(start, start + len(batches[index]))), tensors)
    if writer is not None:
        writer.commit(keys, entries.namespace)
        if pack is not None:
            store.add(pack, [keys[p] for p in missing])
    accelerator.wait_for_everyone()
    log("info", f"{entries.label}: {len(keys) - len(missing)} of {len(keys)} {entries.noun} reused from the cache, "
                f"{len(missing)} encoded{detail}")
    return map_table(table)[1]


def _namespace(task, kind: str, modules: list, settings: list) -> str:
    """The store folder of a cache: its kind, the models' weights and the settings its entries depend on.
    The main process's digest is everyone's, so all processes read and write one folder."""
    digest = None
    if task.accelerator.is_main_process:
        fingerprint = {"kind": kind, "version": CACHE_VERSION, "family": task.family, "settings": settings,
                       "weights": [_weights_digest(m) for m in modules]}
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{kind}-{broadcast_object_list([digest])[0]}"


def _weights_digest(module) -> str:
    """sha256 of the module's config and every weight's name, dtype, shape and bytes."""
    config = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _image_facts(accelerator, rows, column: str) -> list[tuple[str, tuple[int, int]]]:
    """(sha256 of its content, (width, height)) for each row's image; each process reads its share."""
    import datasets

    if isinstance(rows.features[column], datasets.Image):
        undecoded = rows.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    else:
        undecoded = rows.select_columns([column])
    n, rank = accelerator.num_processes, accelerator.process_index
    mine = [(row, _image_fact(undecoded[row][column])) for row in range(rank, len(rows), n)]
    facts = dict(pair for share in gather_object([mine]) for pair in share)
    return [facts[row] for row in range(len(rows))]


def _image_fact(value) -> tuple[str, tuple[int, int]]:
    """The encoded bytes' digest where they can be read without decoding; the pixels' otherwise."""
    from PIL import Image

    if isinstance(value, dict):
        encoded = value["bytes"] or Path(value["path"]).read_bytes()
        return hashlib.sha256(encoded).hexdigest(), Image.open(io.BytesIO(encoded)).size
    pixels = hashlib.sha256(f"{value.mode}:{value.size}".encode())
    pixels.update(value.tobytes())
    return pixels.hexdigest(), value.size


def _captions(rows, column: str) -> list[str]:
    found = set()
    for value in rows[column]:
        found.update([value] if isinstance(value, str) else value)
    return sorted(found)
