"""The warm library worker: a generation with changed weights ÷ the base load a cold one pays. Goal: <= 0.1.

Each round starts a fresh worker (loratui.library.worker, through the client the dashboard uses), asks for a
generation with two adapters (cold: the base model loads) and then for one with other weights (warm: only
the weights change). The base load is timed from the worker's "loading base" event to its next event.

    .venv/bin/python bench/mixer_switch.py [--base builtin:tiny-sd] [--steps 2] [--size 32] [--rounds 3]

Medians of the rounds. The library lives in a temporary LORATUI_HOME; built-in bases come from the usual one.
A second ratio, the warm request's time before denoising starts ÷ the base load, is what the worker adds:
where a few denoising steps cost about as much as loading the base (a tiny base on a busy CPU), the first
ratio measures the model's own compute.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' LoRA maker: random untrained adapters


def timed(worker, request) -> tuple[float, dict[str, float]]:
    """Seconds to the outcome, and when each stage began (seconds after submitting)."""
    start = time.perf_counter()
    job = worker.submit(request)
    stages = {}
    for progress in job:
        stages.setdefault(progress.stage, time.perf_counter() - start)
    if job.outcome.status != "done":
        raise SystemExit(f"generation {job.outcome.status}: {job.outcome.error}")
    return time.perf_counter() - start, stages


def one_round(request, warm_request) -> dict[str, float]:
    from loratui.library.worker_client import WorkerClient

    with WorkerClient() as worker:
        worker.start()
        cold, stages = timed(worker, request)
        after_load = min(t for stage, t in stages.items() if t > stages["loading base"])
        warm, warm_stages = timed(worker, warm_request)
    if "loading base" in warm_stages:
        raise SystemExit("the warm generation loaded the base again")
    return {"cold": cold, "load": after_load - stages["loading base"], "warm": warm,
            "to_denoising": warm_stages["denoising"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="builtin:tiny-sd", help="a Stable Diffusion pipeline")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, help="width and height in pixels")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from adapter_ops_data import sd_lora

    from engine.adapters.load import quiet, resolve_base
    from loratui.db.library import open_db
    from loratui.library import adapters
    from loratui.library.requests import GenerateRequest, Pick

    quiet()
    base = resolve_base(args.base)  # in the usual built-in cache, before LORATUI_HOME moves
    with tempfile.TemporaryDirectory(prefix="bench-mixer-") as work:
        os.environ["LORATUI_HOME"] = str(Path(work) / "home")
        db = open_db()
        for name, rank, seed in (("ink", 4, 1), ("paper", 8, 2)):
            adapters.register(db, sd_lora(Path(base), Path(work) / name, rank=rank, seed=seed), name=name,
                              base_model=base)
        db.conn.close()
        settings = {"prompt": "a red circle", "seed": 1, "steps": args.steps, "width": args.size,
                    "height": args.size}
        cold = GenerateRequest(adapters=[Pick("ink", 0.8), Pick("paper", 0.3)], **settings)
        warm = GenerateRequest(adapters=[Pick("ink", 0.2), Pick("paper", -0.5)], **settings)
        rounds = [one_round(cold, warm) for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = median["warm"] / median["load"]
    print(f"base {args.base}, 2 adapters, {args.steps} steps at {args.size} px, median of {args.rounds} rounds\n")
    print(f"{'cold generation':<26} {median['cold'] * 1000:8.1f} ms   of which base load {median['load'] * 1000:8.1f} ms")
    print(f"{'warm, changed weights':<26} {median['warm'] * 1000:8.1f} ms   "
          f"of which before denoising {median['to_denoising'] * 1000:8.1f} ms")
    print(f"ratio warm generation / base load {ratio:.3f}   goal <= 0.1: {'ok' if ratio <= 0.1 else 'MISSED'}")
    # The rest of a warm generation is the model's own denoising, which no worker can spare.
    print(f"ratio warm overhead before denoising / base load {median['to_denoising'] / median['load']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
