"""GPU check: the engine against plain reference loops on models of the real shapes (random weights, built here
from their configs: no network), with seconds per step and peak CUDA memory, against the goals of issue #16.

    .venv/bin/python bench/gpu_check.py [--only sd15,sdxl,llm] [--budget 450] [--smoke] [--workdir DIR]

Cases: SD 1.5 at 512 px, batch 1 and 4, fp16; SDXL at 1024 px, batch 1, bf16 with gradient checkpointing; a
1.1B Llama (LoRA and QLoRA, bf16, gradient checkpointing), max_length 2048, batch 1, packed. The engine runs as
users run it, `loratui run --spec` (preflight, accelerate launch, engine.train); its seconds per step and peak
(torch.cuda.max_memory_allocated, gathered into every step event's memory) come from the run's events.jsonl.
The reference loops (bench/lib/reference_loops.py) train the same model folder, data, batch and precision.
Each figure is the median step after the warm-up steps. Each case runs in its own process with a time limit,
all within --budget seconds: a case that would not fit is named as skipped, never left to eat the rest.
--smoke runs the same code on CPU at tiny shapes (fp32, 32 px, max_length 64, 3 steps; the engine in-process,
one worker for every case), so CI keeps it working; its figures measure nothing.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GB = 1e9
MIN_CASE_S = 20  # a case is not started with less of the budget left


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # sd15, sdxl or llama: the folder it trains (shared by cases of one model)
    batch: int
    precision: str  # on a GPU; --smoke trains in fp32
    checkpointing: bool = False
    quantized: bool = False
    cap_s: int = 120  # seconds at most, building the model included


CASES = (
    Case("sd15-b1", "sd15", 1, "fp16", cap_s=130),
    Case("sd15-b4", "sd15", 4, "fp16", cap_s=90),
    Case("sdxl", "sdxl", 1, "bf16", checkpointing=True, cap_s=180),
    Case("llm-lora", "llama", 1, "bf16", checkpointing=True, cap_s=120),
    Case("llm-qlora", "llama", 1, "bf16", checkpointing=True, quantized=True, cap_s=100),
)
ONLY = {"sd15": "sd15", "sdxl": "sdxl", "llm": "llama"}
TITLES = {"sd15": "SD 1.5", "sdxl": "SDXL", "llama": "1.1B Llama"}


@dataclass(frozen=True)
class Sizes:
    resolution: dict  # by model
    max_length: int
    steps: int
    warmup: int  # steps left out of the median
    image_rows: int
    text_rows: int
    words_per_text: int


REAL = Sizes({"sd15": 512, "sdxl": 1024}, 2048, steps=12, warmup=4, image_rows=16, text_rows=96, words_per_text=300)
SMOKE = Sizes({"sd15": 32, "sdxl": 32}, 64, steps=3, warmup=1, image_rows=8, text_rows=16, words_per_text=20)
# (what, case, figure of the engine, at most)
GOALS = (
    ("SD 1.5 512 px, batch 1: s per micro-step <= 0.3", "sd15-b1", "seconds", 0.3),
    ("SDXL LoRA 1024 px, batch 1: peak <= 10 GB", "sdxl", "peak", 10 * GB),
    ("1B QLoRA: peak <= 6 GB", "llm-qlora", "peak", 6 * GB),
)


def title(case: Case, sizes: Sizes, smoke: bool) -> str:
    shape = (f"max_length {sizes.max_length}, packed" if case.model == "llama"
             else f"{sizes.resolution[case.model]} px")
    kind = ("QLoRA" if case.quantized else "LoRA") if case.model == "llama" else "LoRA"
    extra = ", gradient checkpointing" if case.checkpointing else ""
    return (f"{TITLES[case.model]}{' (tiny)' if smoke else ''} {kind}, {shape}, batch {case.batch}, "
            f"{'fp32' if smoke else case.precision}{extra}")


# -- the worker: one process per case on a GPU (one for all with --smoke) ---------------------------------

def spec_toml(case: Case, sizes: Sizes, model: Path, data: Path, run: Path, smoke: bool) -> str:
    import tomli_w

    train = {"batch_size": case.batch, "max_steps": sizes.steps, "mixed_precision": "no" if smoke else case.precision,
             "gradient_checkpointing": case.checkpointing, "log_every_steps": 1, "checkpointing_steps": 0}
    common = {"name": f"gpu-check-{case.name}", "output": {"dir": str(run)}}
    if case.model == "llama":
        return tomli_w.dumps({
            **common, "task": "causal-lm",
            "model": {"pretrained": str(model), "torch_dtype": "float32" if smoke else "bfloat16",
                      "load_in_4bit": case.quantized},
            "data": {"source": str(data), "format": "text", "max_length": sizes.max_length, "packing": True},
            "train": {**train, "learning_rate": 2e-4}})
    return tomli_w.dumps({
        **common, "model": {"pretrained": str(model)},
        "data": {"source": "builtin:shapes", "max_samples": sizes.image_rows},
        "train": {**train, "learning_rate": 1e-4, "resolution": sizes.resolution[case.model], "center_crop": True}})


def engine_run(spec: str, run: Path, in_process: bool) -> tuple[list[float], int | None]:
    """(step times, peak CUDA memory) of the engine, as `loratui run --spec` (or engine.train in this process)."""
    from engine.events import read_events

    path = run.with_suffix(".toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec)
    if in_process:
        from engine.rundir import RunDir
        from engine.spec import parse_toml
        from engine.train import main

        RunDir(run).create(parse_toml(spec).to_toml())
        main([str(run)])
    else:
        out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(path)], stdout=sys.stdout,
                             stderr=subprocess.PIPE, text=True)
        sys.stderr.write(out.stderr)
        if out.returncode and not (run / "events.jsonl").is_file():
            lines = [line for line in out.stderr.splitlines() if line.strip()]
            raise RuntimeError(f"loratui run exited {out.returncode}: {lines[-1] if lines else 'no output'}")
    events = read_events(run / "events.jsonl")
    failed = [e for e in events if e["type"] == "run_failed"]
    if failed:
        raise RuntimeError(f"engine run failed: {failed[-1]['reason']}")
    steps = [e for e in events if e["type"] == "step" and e["step_time"] is not None]
    peaks = [d["peak"] for e in steps if e["memory"]["kind"] == "cuda" for d in e["memory"]["devices"]]
    return [e["step_time"] for e in steps], max(peaks, default=None)


def figures(train) -> dict:
    """{times, peak} or {error} of one side of a case; `train` returns (step times, peak)."""
    try:
        times, peak = train()
    except Exception as exc:  # a failed side is reported in the table; the other side still runs
        return {"error": f"{type(exc).__name__}: {'; '.join(str(exc).splitlines())}"[:500]}
    return {"times": times, "peak": peak}


def measure(case: Case, scratch: Path, smoke: bool, in_process: bool) -> dict:
    import torch
    from lib import real_models, reference_loops

    from engine import builtin

    sizes = SMOKE if smoke else REAL
    dtype = torch.float32 if smoke else {"fp16": torch.float16, "bf16": torch.bfloat16}[case.precision]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    model = scratch / "models" / case.model
    real_models.build(case.model, smoke, model, dtype, device)
    built_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.empty_cache()  # the build's memory, before the engine's process counts its own
    texts = scratch / "texts.jsonl"
    if case.model == "llama" and not texts.is_file():
        real_models.write_texts(texts, sizes.text_rows, sizes.words_per_text)
    run = scratch / "runs" / case.name
    spec = spec_toml(case, sizes, model, texts, run, smoke)
    engine = figures(lambda: engine_run(spec, run, in_process))
    precision = "no" if smoke else case.precision
    if case.model == "llama":
        lines = [json.loads(line)["text"] for line in texts.read_text().splitlines()]
        reference = figures(lambda: reference_loops.causal_lm(
            model, lines, sizes.max_length, case.batch, sizes.steps, precision, case.checkpointing, case.quantized))
    else:
        images = builtin.path("builtin:shapes") / "train"
        reference = figures(lambda: reference_loops.text_to_image(
            model, images, sizes.image_rows, sizes.resolution[case.model], case.batch, sizes.steps, precision,
            case.checkpointing))
    for side in (engine, reference):
        if "times" in side:
            times = side.pop("times")
            side["seconds"] = statistics.median(times[sizes.warmup:] or times)
    machine = f"{torch.cuda.get_device_name()}, " if device == "cuda" else "CPU, "
    return {"case": case.name, "built_s": built_s, "engine": engine, "reference": reference,
            "machine": machine + f"torch {torch.__version__}"}


def worker(names: list[str], scratch: Path, smoke: bool, in_process: bool) -> None:
    for case in (c for c in CASES if c.name in names):
        result = measure(case, scratch, smoke, in_process)
        with open(scratch / "results.jsonl", "a") as out:
            out.write(json.dumps(result) + "\n")


# -- the driver: time-boxed workers, then the table --------------------------------------------------------

def end_tree(proc: subprocess.Popen) -> None:
    """Kill a timed-out worker and every process it started (training runs in a session of its own)."""
    import psutil

    try:
        worker = psutil.Process(proc.pid)
        family = [*worker.children(recursive=True), worker]  # found before any dies, whose orphans we would lose
    except psutil.NoSuchProcess:
        family = []
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def run_worker(cases: list[Case], args, scratch: Path, timeout: float) -> str | None:
    """Run the cases in one worker process; what went wrong, or None (their results are in results.jsonl)."""
    log = scratch / f"{cases[0].name}.log"
    cmd = [sys.executable, __file__, "--worker", ",".join(c.name for c in cases), "--workdir", str(scratch)]
    cmd += ["--smoke"] if args.smoke else []
    cmd += ["--engine", args.engine]
    root = str(Path(__file__).resolve().parents[1])  # engine and loratui, installed or not
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    if args.smoke:  # on a busy CPU, torch's spinning threads can make a tiny step take seconds
        env.setdefault("OMP_NUM_THREADS", "1")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_tree(proc)
            code = None
    if code == 0:
        return None
    tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-12:])
    what = f"timed out after {timeout:.0f} s" if code is None else f"its worker exited {code}"
    return f"{what}; the end of its log:\n{tail}"


def read_results(scratch: Path) -> dict:
    path = scratch / "results.jsonl"
    if not path.is_file():
        return {}
    return {r["case"]: r for r in map(json.loads, path.read_text().splitlines())}


def skip_reason(case: Case, smoke: bool) -> str | None:
    import importlib.util

    if case.quantized and smoke:
        return "QLoRA needs CUDA (bitsandbytes 4-bit); not run with --smoke"
    if case.quantized and importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    return None


def drive(args, scratch: Path) -> bool:
    """Run the chosen cases and print their table; whether every case that could run ran without an error."""
    os.environ.setdefault("LORATUI_HOME", str(scratch / "home"))
    (scratch / "results.jsonl").unlink(missing_ok=True)  # a kept --workdir keeps its models, not its runs
    shutil.rmtree(scratch / "runs", ignore_errors=True)
    sizes = SMOKE if args.smoke else REAL
    chosen = [c for c in CASES if c.model in {ONLY[name] for name in args.only}]
    skipped = {c.name: reason for c in chosen if (reason := skip_reason(c, args.smoke))}
    runnable = [c for c in chosen if c.name not in skipped]
    problems = 0
    # On a GPU each case has a process of its own (a clean peak, a limit of its own); --smoke shares one.
    groups = [runnable] if args.smoke and runnable else [[c] for c in runnable]
    deadline = time.monotonic() + args.budget
    print(f"budget {args.budget:.0f} s; {sizes.steps} steps a run, the median of those after the first "
          f"{sizes.warmup}; GB = 10^9 bytes")
    for group in groups:
        left = deadline - time.monotonic()
        if left < MIN_CASE_S:
            skipped.update({c.name: f"not started: {left:.0f} s of the budget left" for c in group})
            problems += len(group)
            continue
        started = time.monotonic()
        problem = run_worker(group, args, scratch, min(left, sum(c.cap_s for c in group)))
        results = read_results(scratch)
        for case in group:
            if case.name not in results:
                skipped[case.name] = problem or "no result"
                problems += 1
                print(f"{case.name}: {skipped[case.name]}")
            else:
                failed = [side for side in ("engine", "reference") if "error" in results[case.name][side]]
                problems += bool(failed)
                print(f"{case.name}: {'failed: ' + ', '.join(failed) if failed else 'done'} (its worker ran "
                      f"{time.monotonic() - started:.0f} s, the model's build {results[case.name]['built_s']:.0f} s)")
    report(chosen, read_results(scratch), skipped, sizes, args.smoke)
    return problems == 0


def cell(side: dict, key: str) -> str:
    value = side.get(key)
    if value is None:
        return "-"
    return f"{value:.3f}" if key == "seconds" else f"{value / GB:.2f}"


def report(chosen: list[Case], results: dict, skipped: dict, sizes: Sizes, smoke: bool) -> None:
    print("\non " + ("; ".join(sorted({r["machine"] for r in results.values()})) or "no machine: nothing ran"))
    print(f"{'case':<10} {'engine s/step':>13} {'reference s/step':>16} {'ref/engine':>10} {'engine peak GB':>14} "
          f"{'ref peak GB':>11}  what")
    for case in chosen:
        if case.name in skipped:
            print(f"{case.name:<10} skipped: {skipped[case.name].splitlines()[0]}")
            continue
        engine, reference = results[case.name]["engine"], results[case.name]["reference"]
        ratio = (f"{reference['seconds'] / engine['seconds']:.2f}x"
                 if "seconds" in engine and "seconds" in reference else "-")
        print(f"{case.name:<10} {cell(engine, 'seconds'):>13} {cell(reference, 'seconds'):>16} {ratio:>10} "
              f"{cell(engine, 'peak'):>14} {cell(reference, 'peak'):>11}  {title(case, sizes, smoke)}")
        for side, figures_ in (("engine", engine), ("reference", reference)):
            if "error" in figures_:
                print(f"{'':<10} {side} failed: {figures_['error']}")
    print("\ngoals (the engine's figures), PASS/FAIL per goal:")
    for what, name, key, limit in GOALS:
        side = results.get(name, {}).get("engine", {})
        value = None if smoke else side.get(key)
        print(f"  {what:<48} {cell(side, key) if value is not None else '-':>8}  "
              f"{verdict(value, limit, smoke, skipped.get(name), side.get('error'))}")


def verdict(value: float | None, limit: float, smoke: bool, skipped: str | None, error: str | None) -> str:
    if smoke:
        return "skipped (--smoke: tiny shapes on CPU)"
    if skipped:
        return f"skipped ({skipped.split(';')[0]})"
    if error:
        return "not measured: the engine's run failed (above)"
    if value is None:
        return "skipped (not chosen with --only)"
    return "PASS" if value <= limit else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="sd15,sdxl,llm", type=lambda s: [n for n in s.split(",") if n],
                        help="comma-separated: sd15, sdxl, llm")
    parser.add_argument("--budget", type=float, default=450, help="seconds for every case together")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the code works")
    parser.add_argument("--engine", choices=("cli", "in-process"), default=None,
                        help="how the engine runs: `loratui run --spec` (default) or engine.train in the worker "
                             "(the default with --smoke)")
    parser.add_argument("--workdir", help="keep models, runs and logs here, the models for a later run "
                        "(default: a temp folder, removed)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.only) - set(ONLY)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))} (allowed: {', '.join(ONLY)})")
    args.engine = args.engine or ("in-process" if args.smoke else "cli")
    if args.worker:
        worker(args.worker.split(","), Path(args.workdir), args.smoke, args.engine == "in-process")
        return
    if not args.smoke:
        import torch

        if not torch.cuda.is_available():  # asked without starting CUDA here: the workers' memory is theirs
            sys.exit("no CUDA device: run with --smoke on a CPU")
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        ok = drive(args, Path(args.workdir).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
            ok = drive(args, Path(scratch))
    if not ok:
        sys.exit("some cases failed or did not run: see above")


if __name__ == "__main__":
    main()
