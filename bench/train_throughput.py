"""Training throughput: the engine against a plain loop written the way diffusers' train_text_to_image_lora.py
works (VAE encode and text encode every step, loss read with .item() every step), side by side in one run.

    .venv/bin/python bench/train_throughput.py [--model builtin:tiny-sd] [--steps 40] [--resolution 64]
                                               [--photo-size 768] [--compile-backend inductor]

Same model, data, order, augmentation, settings and seed; the noise of each step comes from the same seeded
generator, so the first losses must agree to 1e-5 with caching off (same math). Goals: engine ÷ reference
steps/s >= 1.0 with caching off, >= 1.3 with cached latents and text embeddings, >= 1.5 with those and
[train] compile. Compile's start-up cost is its first step's time over the uncompiled first step's (round 1
compiles cold; later rounds find inductor's on-disk cache warm, as a user's second run does), its gain the
uncompiled steps' time over the compiled ones'. --compile-backend eager captures graphs without inductor's code
generation (minutes on a small CPU): a quicker check that the path works, not for figures; none skips the
compiled run (tests/engine/test_compile.py checks compiled training). With caching off the
engine does the same math with less work: one fused AdamW kernel, and each image decoded and resized once
(kept in memory) rather than every epoch; the reference keeps the seed's ways. Rounds alternate the
order of the runs. --photo-size trains on large JPEG copies of the images, as real datasets hold, whose
decoding and resizing the cache also saves. Each run gives its median step time after a warm-up; a ratio is
taken within each round and the median over rounds reported. It also prints the share of the reference's
step spent loading and encoding the batch, which bounds what any cache can gain, and encoding's share of a
step's FLOPs for this model and for SD 1.5 at 512 px (counted on the meta device, no weights), a yardstick
that no busy machine disturbs: a tiny model whose share is far below SD's understates caching. On a shared
machine, OMP_NUM_THREADS=1 keeps the comparison from measuring the neighbours.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

WARMUP = 5
MATCHED_STEPS = 20


def photo_sized_copy(source: str, size: int) -> str:
    """The dataset as users usually have it: large JPEG photos, decoded and resized every step when not cached."""
    import csv

    from PIL import Image

    from engine import builtin

    folder = Path(builtin.resolve(source)) / "train"
    target = Path(tempfile.mkdtemp(prefix="bench-photos-")) / "train"
    target.mkdir(parents=True)
    with open(folder / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        image = Image.open(folder / row["file_name"]).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        row["file_name"] = Path(row["file_name"]).with_suffix(".jpg").name
        image.save(target / row["file_name"], quality=95)
    with open(target / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(target.parent)


def spec_toml(args, cache: bool, compile_: bool = False) -> str:
    return f"""
name = "bench"
[model]
pretrained = "{args.model}"
[data]
source = "{args.data}"
[train]
resolution = {args.resolution}
center_crop = true
random_flip = true
batch_size = {args.batch_size}
max_steps = {args.steps}
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 0
cache = {"true" if cache else "false"}
compile = {"true" if compile_ else "false"}
"""


def engine_run(args, cache: bool, compile_: bool = False) -> tuple[list[float], list[float]]:
    """(losses, step times) of engine.train in this process."""
    import torch

    from engine.events import read_events
    from engine.rundir import RunDir
    from engine.spec import parse_toml
    from engine.train import main

    folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    run = RunDir(folder).create(parse_toml(spec_toml(args, cache, compile_)).to_toml())
    torch._dynamo.reset()  # each compiled run compiles its own model, as a run's process does
    if main([str(run.path)]) != 0:
        sys.exit(f"engine run failed: {read_events(run.events)[-1]}")
    steps = [e for e in read_events(run.events) if e["type"] == "step"]
    return [e["loss"] for e in steps], [e["step_time"] for e in steps]


def reference_run(args) -> tuple[list[float], list[float], list[float]]:
    """(losses, step times, time per step spent loading and encoding the batch) of the seed script's loop:
    every step encodes the images and the captions again."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTokenizer

    from engine import builtin
    from engine.data import EpochOrder, augment, load_rows, pick_caption, row_rng
    from engine.spec import parse_toml
    from engine.train import step_seed

    spec = parse_toml(spec_toml(args, cache=False))
    t = spec.train
    accelerator = Accelerator()
    set_seed(t.seed)
    rows = load_rows(spec.data, t.seed)
    path = builtin.resolve(args.model)
    noise_scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
    for model in (unet, vae, text_encoder):
        model.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=spec.lora.rank, lora_alpha=spec.lora.alpha, init_lora_weights="gaussian",
                                target_modules=spec.lora.target_modules))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                  weight_decay=t.adam_weight_decay, eps=t.adam_epsilon)
    images, captions = rows.select_columns([spec.data.image_column]), rows[spec.data.caption_column]

    def preprocess(key):
        epoch, row = key
        flipped = row_rng(t.seed, epoch, row, "flip").random() < 0.5
        pixels, _, _ = augment(images[row][spec.data.image_column], t.resolution, True, flipped, t.interpolation,
                               row_rng(t.seed, epoch, row, "crop"))
        caption = pick_caption(captions[row], row_rng(t.seed, epoch, row, "caption"), "text")
        ids = tokenizer(caption, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                        return_tensors="pt").input_ids[0]
        return torch.from_numpy(pixels), ids

    def collate(examples):
        return torch.stack([e[0] for e in examples]), torch.stack([e[1] for e in examples])

    class Dataset:
        __getitem__ = staticmethod(preprocess)

        def __len__(self):
            return len(rows)

    order = EpochOrder(len(rows), t.seed)
    loader = torch.utils.data.DataLoader(Dataset(), batch_size=t.batch_size, sampler=order, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(t.seed))
    unet, optimizer, loader = accelerator.prepare(unet, optimizer, loader)
    scheduler = accelerator.prepare(get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=0,
                                                  num_training_steps=t.max_steps))
    generator = torch.Generator()
    losses, times, encoding, step, epoch = [], [], [], 0, 0
    last = time.perf_counter()  # step times run from one step's end to the next, data loading included
    while step < t.max_steps:
        loader.set_epoch(epoch)
        for pixels, ids in loader:
            generator.manual_seed(step_seed(t.seed, step, 0, 0))
            latents = vae.encode(pixels).latent_dist.sample(generator=generator) * vae.config.scaling_factor
            hidden = text_encoder(ids, return_dict=False)[0]
            encoding.append(time.perf_counter() - last)  # what a cache can save: loading and encoding the batch
            noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                      generator=generator).long()
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            pred = unet(noisy, timesteps, hidden, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            now = time.perf_counter()
            times.append(now - last)
            last = now
            step += 1
            if step >= t.max_steps:
                break
        epoch += 1
    return losses, times, encoding


# SD 1.5's shapes (its published configs), for a yardstick that needs no weights: FLOPs on the meta device.
SD15 = {
    "unet": {"sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8, "layers_per_block": 2,
             "block_out_channels": (320, 640, 1280, 1280),
             "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
             "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3},
    "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 4,
            "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4},
    "text_encoder": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                     "num_attention_heads": 12},
}


def encode_flop_share(configs: dict, resolution: int, batch: int, targets: list[str]) -> float:
    """Encoding's share of a training step's FLOPs (VAE encode + text encode + UNet forward and backward)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from peft import LoraConfig
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import CLIPTextConfig, CLIPTextModel

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**configs["unet"]), AutoencoderKL(**configs["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=4, target_modules=targets))
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        pixels, ids = torch.randn(batch, 3, resolution, resolution), torch.zeros(batch, 77, dtype=torch.long)
        latents = torch.randn(batch, 4, resolution // factor, resolution // factor)
        hidden = torch.randn(batch, 77, unet.config.cross_attention_dim)
        timesteps = torch.zeros(batch, dtype=torch.long)
        encode = flops(lambda: vae.encode(pixels)) + flops(lambda: text_encoder(ids))
        train = flops(lambda: unet(latents, timesteps, hidden).sample.sum().backward())
    return encode / (encode + train)


def model_configs(ref: str) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    from engine import builtin

    path = builtin.resolve(ref)
    text = CLIPTextConfig.from_pretrained(path, subfolder="text_encoder").to_dict()
    return {"unet": dict(UNet2DConditionModel.load_config(path, subfolder="unet")),
            "vae": dict(AutoencoderKL.load_config(path, subfolder="vae")),
            "text_encoder": {k: v for k, v in text.items() if not k.startswith("_")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-sd")
    parser.add_argument("--data", default="builtin:shapes")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--photo-size", type=int, default=0,
                        help="train on a copy of the data upscaled to this many pixels, saved as JPEG (0: as is)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile's backend for the compiled run (eager: a quick check, no figures; "
                             "none: no compiled run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        tempfile.tempdir = scratch  # run folders, the data copy and the default home: all removed at the end
        measure(args)


def measure(args) -> None:
    import functools

    import torch

    from engine.spec import parse_toml

    os.environ.setdefault("LORATUI_HOME", tempfile.mkdtemp(prefix="bench-home-"))
    if args.compile_backend not in ("inductor", "none"):
        torch.compile = functools.partial(torch.compile, backend=args.compile_backend)
    if args.photo_size:
        args.data = photo_sized_copy(args.data, args.photo_size)
    configs = {"reference (seed loop)": lambda: reference_run(args),
               "engine, cache off": lambda: engine_run(args, cache=False),
               "engine, cache on": lambda: engine_run(args, cache=True)}
    if args.compile_backend != "none":
        configs["engine, cache on, compiled"] = lambda: engine_run(args, cache=True, compile_=True)
    results: dict[str, list] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        names = list(configs) if round_ % 2 == 0 else list(configs)[::-1]
        for name in names:
            results[name].append(configs[name]())
    # Ratios are taken within a round, whose runs ran back to back, then their median across rounds: a shared
    # machine's slow spells move a round's runs together.
    medians = {name: [statistics.median(run[1][WARMUP:]) for run in runs] for name, runs in results.items()}
    reference = medians["reference (seed loop)"]
    data = f"{args.data} ({args.photo_size} px JPEG copies)" if args.photo_size else args.data
    print(f"{args.model} on {data}, {args.resolution} px, batch {args.batch_size}, {args.steps} steps, "
          f"{args.rounds} rounds (median step time after {WARMUP} warm-up steps; ratio: median over rounds)")
    ratios = {}
    for name, seconds in medians.items():
        per_round = [r / s for r, s in zip(reference, seconds, strict=True)]
        ratios[name] = statistics.median(per_round)
        print(f"  {name:<26} {1 / statistics.median(seconds):7.2f} steps/s   ratio {ratios[name]:5.2f}"
              f"   (rounds {min(per_round):.2f}-{max(per_round):.2f})")
    share = statistics.median(statistics.median(run[2][WARMUP:]) / statistics.median(run[1][WARMUP:])
                              for run in results["reference (seed loop)"])
    print(f"  the reference spends {share:.0%} of a step loading and encoding the batch: caching alone can gain "
          f"at most {1 / (1 - share):.2f}x")
    targets = list(parse_toml(spec_toml(args, cache=True)).lora.target_modules)
    here = encode_flop_share(model_configs(args.model), args.resolution, args.batch_size, targets)
    print(f"  by FLOPs, encoding is {here:.0%} of a step here, {encode_flop_share(SD15, 512, 1, targets):.0%} "
          "for SD 1.5 at 512 px")
    ref_losses, engine_losses = results["reference (seed loop)"][0][0], results["engine, cache off"][0][0]
    gap = max(abs(a - b) for a, b in zip(ref_losses[:MATCHED_STEPS], engine_losses[:MATCHED_STEPS], strict=True))
    print(f"  first {MATCHED_STEPS} losses, engine (cache off) vs reference: max |diff| {gap:.2e} "
          f"({'ok' if gap <= 1e-5 else 'MISSED'} <= 1e-5)")
    compiled = ratios.get("engine, cache on, compiled")
    if compiled is not None:
        gap = max(gap, report_compile(args, results["engine, cache on"], results["engine, cache on, compiled"],
                                      medians["engine, cache on"], medians["engine, cache on, compiled"]))
    off, on = ratios["engine, cache off"], ratios["engine, cache on"]
    print(f"  goals: cache off >= 1.0: {'ok' if off >= 1.0 else 'MISSED'}; cache on >= 1.3: "
          f"{'ok' if on >= 1.3 else 'MISSED'}"
          + ("" if compiled is None else f"; cache on, compiled >= 1.5: {'ok' if compiled >= 1.5 else 'MISSED'}"))
    if not math.isfinite(gap):
        sys.exit(1)


def report_compile(args, plain: list, compiled: list, plain_medians: list, compiled_medians: list) -> float:
    """Print compile's start-up cost and per-step gain over the same uncompiled runs; the largest loss gap."""
    startup = [c[1][0] - p[1][0] for p, c in zip(plain, compiled, strict=True)]
    warm = f", warm {statistics.median(startup[1:]):.1f} s" if len(startup) > 1 else ""
    gains = [p / c for p, c in zip(plain_medians, compiled_medians, strict=True)]
    print(f"  compile ({args.compile_backend}): start-up {startup[0]:.1f} s cold{warm} (first step over the "
          f"uncompiled first step); steps {statistics.median(gains):.2f}x as fast (rounds {min(gains):.2f}-"
          f"{max(gains):.2f})")
    gap = max(abs(a - b) for a, b in zip(plain[0][0][:MATCHED_STEPS], compiled[0][0][:MATCHED_STEPS], strict=True))
    print(f"  first {MATCHED_STEPS} losses, compiled vs not: max |diff| {gap:.2e}")
    return gap


if __name__ == "__main__":
    main()
