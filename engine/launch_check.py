"""How a run is to be distributed, judged before launch and without torch: [launch] and the accelerate config
say which kind (none, ddp, fsdp, deepspeed with its ZeRO stage, or another accelerate type), and each task
names the kinds it supports (its registered `distributed`, engine.tasks.registry). Anything else is refused in one line."""

import importlib.util
import os
from pathlib import Path

import yaml

EXPECT_PROCESSES = "LORATUI_EXPECT_PROCESSES"  # set by the launcher when the spec names a process count
KINDS = {"NO": "none", "FSDP": "fsdp", "DEEPSPEED": "deepspeed"}  # accelerate's MULTI_* types are ddp


def accelerate_config(launch) -> tuple[Path | None, dict]:
    """The accelerate config the launch will read, and its values ({} when there is none)."""
    path = Path(launch.config_file).expanduser() if launch.config_file else default_accelerate_config()
    if not path.is_file():
        return (path if launch.config_file else None), {}
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        values = {}
    return path, values if isinstance(values, dict) else {}


def default_accelerate_config() -> Path:
    """Where `accelerate config` writes and `accelerate launch` reads its default config (accelerate's rule)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.environ.get("HF_HOME", os.path.join(cache, "huggingface"))).expanduser() / "accelerate" / \
        "default_config.yaml"


def asked_kind(launch) -> str:
    """The kind of distribution the launch asks for: "none", "ddp", "fsdp", "deepspeed-zero3", or the
    accelerate type's own name for one loratui does not know."""
    config = accelerate_config(launch)[1]
    processes = launch.num_processes or int(config.get("num_processes") or 1)
    machines = launch.num_machines or int(config.get("num_machines") or 1)
    configured = str(config.get("distributed_type") or "NO").upper()
    if launch.distributed != "auto":
        kind = launch.distributed
    elif launch.multi_gpu or configured.startswith("MULTI_"):
        kind = "ddp"
    else:
        kind = KINDS.get(configured, configured)  # another accelerate type keeps its own name
    if kind == "deepspeed" and (config.get("deepspeed_config") or {}).get("zero_stage") is not None:
        kind = f"deepspeed-zero{config['deepspeed_config']['zero_stage']}"
    return "ddp" if kind == "none" and (processes > 1 or machines > 1) else kind


def check(spec, supported: frozenset[str], report) -> None:
    """Refuse a kind of distribution the task does not support, or one this machine cannot run."""
    kind = asked_kind(spec.launch)
    base = "deepspeed" if kind.startswith("deepspeed") else kind
    if kind not in supported and base not in supported:
        allowed = ", ".join(sorted(supported - {"none"}))
        report.errors.append(f"launch.distributed: {kind} is not supported for {spec.task} (supported: {allowed}; "
                             "set launch.distributed or your accelerate config to one of them)")
    elif kind == "fsdp" and not cuda_available():
        report.errors.append("launch.distributed: fsdp needs CUDA GPUs, and this machine has none (accelerate on "
                             "CPU would start independent processes); use ddp here")
    elif base == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        report.errors.append("launch.distributed: deepspeed needs the deepspeed package, which is not installed "
                             "(pip install deepspeed)")


def cuda_available() -> bool:
    """Whether torch could use a CUDA GPU, judged without importing torch: a CUDA build of torch and a GPU
    NVML sees (CUDA_VISIBLE_DEVICES="" hides them all)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    found = importlib.util.find_spec("torch")
    if found is None or not any((Path(found.origin).parent / "lib").glob("libtorch_cuda*")):
        return False
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:  # no driver, no library: no GPU to use
        return False
