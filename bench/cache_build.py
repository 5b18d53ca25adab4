"""Building the text-to-image caches with 1 process and with 2, side by side in one run.

    .venv/bin/python bench/cache_build.py [--model builtin:tiny-sd] [--images 64] [--resolution 128]

Generates an imagefolder of --images captioned shapes of --resolution px, then builds its latent (both
orientations) and text-embedding caches through `accelerate launch --num_processes N` for N = 1 and 2
(`--multi_gpu` for 2: gloo on CPU), each with a fresh store, so every entry is encoded. Each launch loads
the model, waits for every process, then times the cache build alone (process start-up and model loading
excluded, and printed beside it). Goal: 1-process time ÷ 2-process time >= 1.6, the shares encoded in
parallel. accelerate launch gives each CPU process one thread, so on an idle machine of 2 cores or more the
two processes have a core each; on a busy one they wait for their neighbours, and the same ratio taken on
the busiest process's CPU time (which waiting does not count) shows the share of the work each did. It also
checks that the two caches are equal bit for bit.
"""

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.6
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (230, 200, 40)}


def make_images(folder: Path, count: int, size: int) -> None:
    """An imagefolder of `count` shapes of `size` px, each with its own caption."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    folder.mkdir(parents=True)
    lines = ["file_name,text"]
    for i in range(count):
        colour = rng.choice(list(COLOURS))
        image = Image.new("RGB", (size, size), (245, 245, 240))
        half = rng.randint(size // 8, size // 3)
        cx, cy = rng.randint(half, size - half), rng.randint(half, size - half)
        ImageDraw.Draw(image).ellipse((cx - half, cy - half, cx + half, cy + half), fill=COLOURS[colour])
        image.save(folder / f"{i:04d}.png")
        lines.append(f"{i:04d}.png,a {colour} circle number {i}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")


def spec_fields(args, data: Path) -> dict:
    return {"name": "bench-cache", "model": {"pretrained": args.model}, "data": {"source": str(data)},
            "train": {"max_steps": 1, "resolution": args.resolution, "random_flip": True, "center_crop": True}}


def launch(processes: int, spec: dict, run_folder: Path, home: Path) -> dict:
    """One `accelerate launch` of the worker: its report, with the launch's own wall time."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
           "--num_machines", "1", "--dynamo_backend", "no", "--mixed_precision", "no",
           "--main_process_port", str(port), *(["--multi_gpu"] if processes > 1 else []),
           __file__, "--worker", json.dumps(spec), str(run_folder)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LORATUI_HOME": str(home)})
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{processes}-process build failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return {**report, "wall": wall}


def worker(spec_json: str, run_folder: str) -> None:
    """In each launched process: load the task without caches, then time build_caches on every process."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    from engine.data import load_rows
    from engine.spec import parse_spec
    from engine.tasks import load_task
    from engine.tasks.text_to_image.cache import build_caches

    on_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1  # as engine.train
    accelerator = Accelerator(cpu=on_cpu, project_dir=run_folder)
    fields = json.loads(spec_json)
    spec = parse_spec(fields)
    rows = load_rows(spec.data, spec.train.seed)
    uncached = parse_spec({**fields, "train": {**fields["train"], "cache": False}})
    task = load_task(uncached, accelerator, rows, log=lambda level, message: None)
    task.spec = spec
    lines = []
    accelerator.wait_for_everyone()
    start, cpu = time.perf_counter(), time.process_time()
    build_caches(task, rows, lambda level, message: lines.append(message))
    cpu = gather_object([time.process_time() - cpu])
    seconds = time.perf_counter() - start
    if accelerator.is_main_process:
        print(json.dumps({"seconds": seconds, "cpu": cpu, "log": lines, "threads": torch.get_num_threads()}))


def same_bits(first: Path, second: Path) -> bool:
    """Every array of every cache table in two run folders, byte for byte."""
    files = sorted(p.relative_to(first) for p in (first / "cache").rglob("*.npy"))
    found = sorted(p.relative_to(second) for p in (second / "cache").rglob("*.npy"))
    return bool(files) and files == found and all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-sd")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args()
    from engine.home import home

    builtins = home() / "builtin"  # built once, shared by the fresh homes below
    builtins.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as scratch:
        scratch = Path(scratch)
        make_images(scratch / "data" / "train", args.images, args.resolution)
        spec = spec_fields(args, scratch / "data")
        reports = {}
        for processes in (1, 2):
            fresh = scratch / f"home-{processes}"
            fresh.mkdir()
            (fresh / "builtin").symlink_to(builtins)
            reports[processes] = launch(processes, spec, scratch / f"run-{processes}", fresh)
        identical = same_bits(scratch / "run-1", scratch / "run-2")
    one, two = reports[1], reports[2]
    ratio = one["seconds"] / two["seconds"]
    print(f"{args.model}: caches of {args.images} images of {args.resolution} px (2 orientations each) and their "
          f"captions, a fresh store each time; {os.cpu_count()} CPU cores here")
    for processes, report in reports.items():
        print(f"  {processes} process{'es' if processes > 1 else ''}: build {report['seconds']:6.2f} s, CPU "
              f"{' + '.join(f'{s:.2f}' for s in report['cpu'])} s (launch to exit {report['wall']:5.1f} s, "
              f"{report['threads']} torch threads each)")
        print(f"    {report['log'][-1]}")
    print(f"  ratio 1-proc / 2-proc: {ratio:.2f} (goal >= {GOAL}: {'ok' if ratio >= GOAL else 'MISSED'}); "
          f"by the busiest process's CPU time, which the neighbours do not slow: "
          f"{sum(one['cpu']) / max(two['cpu']):.2f}")
    print(f"  the 2-process cache equals the 1-process cache bit for bit: {'yes' if identical else 'NO'}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
