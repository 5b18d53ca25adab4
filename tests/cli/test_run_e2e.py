"""End to end: `loratui run` trains tiny built-ins through accelerate launch, headless, and the adapter works
in stock diffusers pipelines. One run per model, shared by the tests that inspect it."""

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from homes import share_builtins

from engine.events import EVENT_TYPES

pytestmark = pytest.mark.slow


def make_home(root: Path, builtin_home: Path) -> Path:
    """A fresh LORATUI_HOME whose built-ins are the session's, built once."""
    return share_builtins(root / "home", builtin_home)


def loratui(home: Path, *args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORATUI_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "loratui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_spec(folder: Path, text: str) -> Path:
    path = folder / "run.toml"
    path.write_text(text)
    return path


def events_of(home: Path, run_id: str) -> list[dict]:
    from engine.events import read_events

    return read_events(home / "runs" / run_id / "events.jsonl")


def losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e["type"] == "step"]


def pipeline_output(pipeline_class, model: Path, adapter_dir: Path | None):
    import torch

    pipe = pipeline_class.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    if adapter_dir is not None:
        pipe.load_lora_weights(adapter_dir)
    generator = torch.Generator().manual_seed(0)
    return pipe("a red circle", num_inference_steps=2, height=32, width=32, generator=generator,
                output_type="np").images


SD_SPEC = """
name = "sd-e2e"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[lora]
rank = 4
alpha = 8
[train]
resolution = 32
center_crop = true
random_flip = true
batch_size = 4
max_steps = 200
learning_rate = 1e-3
lr_scheduler = "cosine"
log_every_steps = 1
checkpointing_steps = 100
checkpoints_total_limit = 1
[validation]
prompt = "a red circle"
every_steps = 100
num_inference_steps = 2
[output]
push_to_hub = true
hub_model_id = "someone/shapes-lora"
"""
TOKEN = "hf_loratuiSentinelToken0123456789"


class RefusingHub(BaseHTTPRequestHandler):
    """A Hub that records who asked for what, and refuses everything."""

    seen: list[tuple[str, str]] = []

    def _refuse(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        RefusingHub.seen.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "forbidden"}')

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def sd_run(tmp_path_factory, builtin_home):
    root = tmp_path_factory.mktemp("sd-e2e")
    home = make_home(root, builtin_home)
    hub = ThreadingHTTPServer(("127.0.0.1", 0), RefusingHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    env = {"HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}"}
    try:
        out = loratui(home, "run", "--spec", str(write_spec(root, SD_SPEC)), env=env)
    finally:
        hub.shutdown()
    assert out.returncode == 0, out.stderr[-3000:]
    return home, out.stdout.strip().splitlines()[-1], out


def test_sd_run_finishes_with_falling_loss_and_the_event_contract(sd_run):
    home, run_id, out = sd_run
    events = events_of(home, run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["v"] == 1 for e in events)
    kinds = [e["type"] for e in events]
    assert kinds.count("run_started") == 1 and kinds[-1] == "run_finished"
    assert all(e["type"] in EVENT_TYPES for e in events)
    assert {"checkpoint_saved", "sample_saved"} <= set(kinds)
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 201))
    first = steps[0]
    assert {"step", "total_steps", "epoch", "loss", "lr", "grad_norm", "samples_per_s", "step_time"} <= first.keys()
    assert first["memory"]["kind"] == "rss" and first["memory"]["rss"] > 0
    values = losses(events)
    assert sum(values[-50:]) / 50 < sum(values[:50]) / 50
    assert f"{run_id}: finished at step 200/200" in out.stderr


def test_sd_adapter_loads_in_a_stock_pipeline_and_changes_its_output(sd_run):
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    home, run_id, _ = sd_run
    run_dir = home / "runs" / run_id
    adapter = run_dir / "pytorch_lora_weights.safetensors"
    with safe_open(adapter, "pt") as handle:
        meta, keys = handle.metadata(), list(handle.keys())
    assert keys and all(".lora" in k for k in keys) and all(k.startswith("unet.") for k in keys)
    assert meta["loratui.base_model"] == "builtin:tiny-sd" and meta["loratui.family"] == "sd1"
    assert (meta["loratui.rank"], meta["loratui.alpha"], meta["loratui.steps"]) == ("4", "8.0", "200")
    assert meta["loratui.target_modules"] == "to_k,to_q,to_v,to_out.0" and len(meta["loratui.spec_hash"]) == 16
    model = home / "builtin" / "tiny-sd"
    plain = pipeline_output(StableDiffusionPipeline, model, None)
    with_lora = pipeline_output(StableDiffusionPipeline, model, run_dir)
    assert abs(plain - with_lora).max() > 1e-3
    # alpha/rank = 2 reaches diffusers through the header: a rank-only reading would scale by 1.
    pipe = StableDiffusionPipeline.from_pretrained(model)
    pipe.load_lora_weights(run_dir)
    config = next(iter(pipe.unet.peft_config.values()))
    assert (config.r, config.lora_alpha) == (4, 8)


def test_sd_run_is_recorded_in_the_library(sd_run):
    from loratui.db.library import open_db
    from loratui.runs.ingest import ingest

    home, run_id, _ = sd_run
    db = open_db(home / "library.db")
    row = next(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    events = events_of(home, run_id)
    assert (row["status"], row["step"], row["total_steps"], row["last_seq"]) == ("finished", 200, 200, events[-1]["seq"])
    assert row["last_loss"] == pytest.approx(losses(events)[-1])
    count = db.execute("SELECT count(loss) FROM steps WHERE run_id = ?", [run_id]).fetchone()[0]
    assert count == 200
    samples = [r["path"] for r in db.query("SELECT path FROM samples WHERE run_id = ? ORDER BY step", [run_id])]
    assert samples and all(Path(p).is_file() and p.endswith(".png") for p in samples)
    summary = json.loads(row["summary"])
    adapter = next(db.query("SELECT * FROM adapters WHERE source_run = ?", [run_id]))
    assert adapter["id"] == summary["adapter_id"] and adapter["rank"] == 4
    # Re-ingesting is idempotent, from where it left off or from scratch.
    assert ingest(db, row["dir"], run_id) == []
    db.execute("UPDATE runs SET last_seq = 0 WHERE id = ?", [run_id])
    db.conn.commit()
    assert len(ingest(db, row["dir"], run_id)) == len(events)
    assert db.execute("SELECT count(loss) FROM steps WHERE run_id = ?", [run_id]).fetchone()[0] == 200
    assert next(db.query("SELECT status FROM runs WHERE id = ?", [run_id]))["status"] == "finished"


def test_push_to_hub_takes_the_token_from_the_environment_and_writes_it_nowhere(sd_run):
    """The push fails (the Hub here refuses), which the run reports without failing: the adapter is on disk."""
    home, run_id, out = sd_run
    assert "error: push_to_hub failed" in out.stderr
    assert ("/api/repos/create", f"Bearer {TOKEN}") in RefusingHub.seen
    assert TOKEN not in out.stdout + out.stderr
    written = [p for p in home.rglob("*") if p.is_file() and "builtin" not in p.relative_to(home).parts]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_sd_checkpoint_and_optimizer_hold_only_the_lora_weights(sd_run):
    import torch
    from safetensors.torch import load_file

    home, run_id, _ = sd_run
    checkpoints = sorted((home / "runs" / run_id / "checkpoints").iterdir())
    assert [c.name for c in checkpoints] == ["checkpoint-000200"]  # limit 1: the step-100 one was pruned after
    lora = load_file(checkpoints[0] / "lora.safetensors")
    assert all("lora_" in k for k in lora) and all(v.dtype == torch.float32 for v in lora.values())
    optimizer = torch.load(checkpoints[0] / "optimizer.pt", weights_only=True)
    assert len(optimizer["param_groups"][0]["params"]) == len(lora)
    assert optimizer["param_groups"][0]["fused"]  # one fused AdamW kernel for all LoRA tensors
    assert json.loads((checkpoints[0] / "state.json").read_text())["step"] == 200


SDXL_SPEC = """
name = "sdxl-e2e"
[model]
pretrained = "builtin:tiny-sdxl"
[data]
source = "builtin:shapes"
[lora]
train_text_encoder = true
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 100
learning_rate = 1e-3
log_every_steps = 1
checkpointing_steps = 0
"""


def test_sdxl_with_text_encoder_lora_learns_and_loads_in_a_stock_pipeline(tmp_path, builtin_home):
    from diffusers import StableDiffusionXLPipeline
    from safetensors import safe_open

    home = make_home(tmp_path, builtin_home)
    out = loratui(home, "run", "--spec", str(write_spec(tmp_path, SDXL_SPEC)))
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = out.stdout.strip().splitlines()[-1]
    values = losses(events_of(home, run_id))
    assert len(values) == 100 and sum(values[-50:]) / 50 < sum(values[:50]) / 50
    run_dir = home / "runs" / run_id
    with safe_open(run_dir / "pytorch_lora_weights.safetensors", "pt") as handle:
        prefixes = {key.split(".")[0] for key in handle.keys()}
        assert handle.metadata()["loratui.family"] == "sdxl"
    assert prefixes == {"unet", "text_encoder", "text_encoder_2"}
    model = home / "builtin" / "tiny-sdxl"
    pipe = StableDiffusionXLPipeline.from_pretrained(model)
    pipe.load_lora_weights(run_dir)
    assert pipe.text_encoder.peft_config and pipe.text_encoder_2.peft_config
    plain = pipeline_output(StableDiffusionXLPipeline, model, None)
    assert abs(plain - pipeline_output(StableDiffusionXLPipeline, model, run_dir)).max() > 1e-3


MULTI_SPEC = """
name = "ddp"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
random_flip = true
batch_size = 2
max_steps = 16
log_every_steps = 4
checkpointing_steps = 8
cache = false
[launch]
num_processes = 2
multi_gpu = true
"""


def test_two_processes_on_cpu_detached_and_followed(tmp_path, builtin_home):
    from diffusers import StableDiffusionPipeline

    home = make_home(tmp_path, builtin_home)
    out = loratui(home, "run", "--detach", "--spec", str(write_spec(tmp_path, MULTI_SPEC)), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = out.stdout.strip()
    follow = loratui(home, "runs", "logs", run_id, "--follow")  # returns when the run ends
    assert follow.returncode == 0 and "run_finished" in follow.stdout, follow.stdout[-2000:]
    events = events_of(home, run_id)
    started = next(e for e in events if e["type"] == "run_started")
    assert started["num_processes"] == 2
    assert [e["step"] for e in events if e["type"] == "step"] == [4, 8, 12, 16]
    checkpoint = home / "runs" / run_id / "checkpoints" / "checkpoint-000016"
    assert (checkpoint / "rng-0.pt").is_file() and (checkpoint / "rng-1.pt").is_file()
    listed = json.loads(loratui(home, "runs", "ls", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "finished")]
    model = home / "builtin" / "tiny-sd"
    plain = pipeline_output(StableDiffusionPipeline, model, None)
    assert abs(plain - pipeline_output(StableDiffusionPipeline, model, home / "runs" / run_id)).max() > 1e-4


def test_progress_into_a_pipe_is_one_whole_line_per_event(sd_run):
    home, run_id, out = sd_run
    lines = out.stderr.splitlines()
    step = re.compile(r"step 200/200 loss \d+\.\d{4} lr \d\.\de[-+]\d\d [\d.]+ it/s eta 0:00:00 rss [\d.]+ GiB")
    assert any(step.fullmatch(line) for line in lines), out.stderr[-2000:]
    assert sum(line.startswith("step ") for line in lines) == 200
    run = home / "runs" / run_id
    assert f"checkpoint saved: {run / 'checkpoints' / 'checkpoint-000100'}" in lines
    assert any(line.startswith(f"sample saved: {run / 'samples'}") and line.endswith(".png") for line in lines)
    assert "…" not in out.stderr


def test_runs_logs_writes_each_step_as_the_run_did(sd_run):
    home, run_id, out = sd_run
    logged = loratui(home, "runs", "logs", run_id)
    assert logged.returncode == 0, logged.stderr
    steps = [line.split(" ", 1)[1] for line in logged.stdout.splitlines() if line.split(" ")[1:2] == ["step"]]
    assert steps == [line for line in out.stderr.splitlines() if line.startswith("step ")]
