"""Adapter operations, each measured side by side with its alternative in one run.

1. Switching among 10 loaded adapters (Session.activate) ÷ reloading the base: goal <= 0.1.
2. combine (cat, svd) and merge through loratui ÷ the raw peft/diffusers calls doing the same job:
   goal <= 1.1 x raw + 50 ms.

    .venv/bin/python bench/adapter_ops.py [--base builtin:tiny-sd] [--repeats 5]

Medians of --repeats runs, loratui and raw interleaved so load on the machine hits both alike.
"""

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' LoRA maker: random untrained adapters

ADAPTERS = 10


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired(loratui_fn, raw_fn, repeats: int) -> tuple[float, float]:
    ours, raw = [], []
    runs = [(loratui_fn, ours), (raw_fn, raw)]
    for i in range(repeats):
        # Alternate which goes first, so neither always pays for the other's garbage or warms its caches.
        for fn, sink in runs if i % 2 == 0 else runs[::-1]:
            gc.collect()
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(raw)


def report(name: str, ours: float, raw: float) -> None:
    limit = 1.1 * raw + 0.05
    verdict = "ok" if ours <= limit else "MISSED"
    print(
        f"{name:<34} loratui {ours * 1000:8.1f} ms   raw {raw * 1000:8.1f} ms   "
        f"ratio {ours / raw:5.2f}   goal <= {limit * 1000:.1f} ms: {verdict}"
    )


def raw_combine(base: Path, files: list[Path], weights: list[float], out: Path, method: str, rank) -> None:
    """The job done with peft and diffusers directly: base parts loaded, adapters attached, combined, saved."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils.peft_utils import get_peft_kwargs
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import CLIPTextModel

    states = [load_file(f) for f in files]
    saved = {}
    for part, loader in (("unet", UNet2DConditionModel), ("text_encoder", CLIPTextModel)):
        model = loader.from_pretrained(base, subfolder=part)
        peft_model = None
        for i, state in enumerate(states):
            own = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(part + ".")}
            ranks = {k: v.shape[1] for k, v in own.items() if "lora_B" in k}
            config = LoraConfig(**get_peft_kwargs(ranks, None, own, is_unet=part == "unet"))
            if peft_model is None:
                peft_model = get_peft_model(model, config, adapter_name=f"p{i}")
            else:
                peft_model.add_adapter(f"p{i}", config)
            set_peft_model_state_dict(
                peft_model, {"base_model.model." + k: v for k, v in own.items()}, f"p{i}"
            )
        peft_model.add_weighted_adapter(
            [f"p{i}" for i in range(len(states))], weights, "mix", combination_type=method, svd_rank=rank
        )
        state = get_peft_model_state_dict(peft_model, adapter_name="mix")
        saved[f"{part}_lora_layers"] = {
            k.removeprefix("base_model.model."): v.contiguous() for k, v in state.items()
        }
    StableDiffusionPipeline.save_lora_weights(str(out), **saved)


def raw_merge(base: Path, files: list[Path], weights: list[float], out: Path) -> None:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(base)
    for i, file in enumerate(files):
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=f"p{i}")
    pipe.set_adapters([f"p{i}" for i in range(len(files))], weights)
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    pipe.save_pretrained(str(out), safe_serialization=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="builtin:tiny-sd", help="a Stable Diffusion pipeline")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-adapter-ops-"))
    os.environ.setdefault("LORATUI_HOME", str(work / "home"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run(args, work: Path) -> None:
    from adapter_ops_data import sd_lora
    from diffusers import DiffusionPipeline

    from engine.adapters.combine import combine
    from engine.adapters.load import Session, quiet, resolve_base
    from engine.adapters.merge import merge

    quiet()
    base = Path(resolve_base(args.base))
    files = [sd_lora(base, work / f"lora{i}", rank=4 + 4 * (i % 2), seed=i) for i in range(ADAPTERS)]
    print(f"base {args.base}, {ADAPTERS} adapters of rank 4/8, median of {args.repeats}\n")

    session = Session(str(base))
    for i, file in enumerate(files):
        session.add(f"a{i}", file)
    switches = [{f"a{i}": 0.5 + 0.1 * i} for i in range(ADAPTERS)] + [
        {f"a{i}": 0.7, f"a{i - 1}": 0.3} for i in range(1, ADAPTERS)
    ]

    def switch_all():
        for weights in switches:
            session.activate(weights)

    switch = median_seconds(switch_all, args.repeats) / len(switches)
    reload = median_seconds(lambda: DiffusionPipeline.from_pretrained(base), args.repeats)
    print(
        f"{'switch adapters (per switch)':<34} {switch * 1000:8.2f} ms   reload base {reload * 1000:8.1f} ms   "
        f"ratio {switch / reload:.3f}   goal <= 0.1: {'ok' if switch / reload <= 0.1 else 'MISSED'}"
    )
    assert session.base_loads == 1

    pair, weights = files[:2], [0.6, 0.4]
    counter = iter(range(10**6))
    for method, rank in (("cat", None), ("svd", 8)):
        ours, raw = paired(
            lambda m=method, r=rank: combine(pair, weights, work / f"c{next(counter)}", method=m, rank=r),
            lambda m=method, r=rank: raw_combine(base, pair, weights, work / f"r{next(counter)}", m, r),
            args.repeats,
        )
        report(f"combine {method} (2 adapters)", ours, raw)
    adapters = [(f"a{i}", file, w) for i, (file, w) in enumerate(zip(pair, weights, strict=True))]
    ours, raw = paired(
        lambda: merge(str(base), adapters, work / f"m{next(counter)}"),
        lambda: raw_merge(base, pair, weights, work / f"n{next(counter)}"),
        args.repeats,
    )
    report("merge/fuse + save (2 adapters)", ours, raw)


if __name__ == "__main__":
    sys.exit(main())
