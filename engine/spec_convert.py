"""`loratui spec convert`: a command line of diffusers' train_text_to_image_lora.py (through accelerate launch
or python) becomes an equivalent spec. Flags the script leaves out take the script's own defaults, so the
spec trains what that command would have trained.
"""

import importlib.util
import os
import re
import shlex
from pathlib import PurePath

from engine.errors import LoratuiError
from engine.spec import Spec, parse_spec
from engine.tasks.text_to_image import TASK as TEXT_TO_IMAGE

# The seed script's defaults where they differ from loratui's, so an omitted flag means what it meant there.
SCRIPT_DEFAULTS = {
    ("train", "resolution"): 512,
    ("train", "batch_size"): 16,
    ("train", "num_epochs"): 100,
    ("train", "lr_scheduler"): "constant",
    ("train", "lr_warmup_steps"): 500,
    ("train", "checkpointing_steps"): 500,
    ("train", "checkpoints_total_limit"): 0,
    ("validation", "num_images"): 4,
    ("validation", "every_epochs"): 1,
    ("validation", "num_inference_steps"): 30,
    ("output", "report_to"): "tensorboard",
}

# flag -> (section, field, type); type bool marks a store_true flag.
SCRIPT_FLAGS = {
    "pretrained_model_name_or_path": ("model", "pretrained", str),
    "revision": ("model", "revision", str),
    "variant": ("model", "variant", str),
    "dataset_name": ("data", "source", str),
    "train_data_dir": ("data", "source", str),
    "dataset_config_name": ("data", "config", str),
    "image_column": ("data", "image_column", str),
    "caption_column": ("data", "caption_column", str),
    "max_train_samples": ("data", "max_samples", int),
    "rank": ("lora", "rank", int),
    "train_text_encoder": ("lora", "train_text_encoder", bool),
    "resolution": ("train", "resolution", int),
    "center_crop": ("train", "center_crop", bool),
    "random_flip": ("train", "random_flip", bool),
    "image_interpolation_mode": ("train", "interpolation", str),
    "train_batch_size": ("train", "batch_size", int),
    "num_train_epochs": ("train", "num_epochs", int),
    "max_train_steps": ("train", "max_steps", int),
    "gradient_accumulation_steps": ("train", "gradient_accumulation_steps", int),
    "gradient_checkpointing": ("train", "gradient_checkpointing", bool),
    "learning_rate": ("train", "learning_rate", float),
    "scale_lr": ("train", "scale_lr", bool),
    "lr_scheduler": ("train", "lr_scheduler", str),
    "lr_warmup_steps": ("train", "lr_warmup_steps", int),
    "snr_gamma": ("train", "snr_gamma", float),
    "use_8bit_adam": ("train", "use_8bit_adam", bool),
    "allow_tf32": ("train", "allow_tf32", bool),
    "dataloader_num_workers": ("train", "dataloader_num_workers", int),
    "adam_beta1": ("train", "adam_beta1", float),
    "adam_beta2": ("train", "adam_beta2", float),
    "adam_weight_decay": ("train", "adam_weight_decay", float),
    "adam_epsilon": ("train", "adam_epsilon", float),
    "max_grad_norm": ("train", "max_grad_norm", float),
    "prediction_type": ("train", "prediction_type", str),
    "mixed_precision": ("train", "mixed_precision", str),
    "seed": ("train", "seed", int),
    "checkpointing_steps": ("train", "checkpointing_steps", int),
    "checkpoints_total_limit": ("train", "checkpoints_total_limit", int),
    "resume_from_checkpoint": ("train", "resume_from_checkpoint", str),
    "noise_offset": ("train", "noise_offset", float),
    "validation_prompt": ("validation", "prompt", str),
    "num_validation_images": ("validation", "num_images", int),
    "validation_epochs": ("validation", "every_epochs", int),
    "output_dir": ("output", "dir", str),
    "push_to_hub": ("output", "push_to_hub", bool),
    "hub_model_id": ("output", "hub_model_id", str),
    "report_to": ("output", "report_to", str),
}
# Flags with no loratui counterpart, and why dropping them changes nothing that matters.
SCRIPT_IGNORED = {
    "cache_dir": "downloads go to the Hugging Face cache (set HF_HOME to move it)",
    "logging_dir": "events.jsonl in the run folder is the log",
    "local_rank": "accelerate sets the rank",
    "enable_xformers_memory_efficient_attention": "PyTorch's scaled-dot-product attention is used",
    "hub_token": "the token is read from HF_TOKEN and never written into a spec",
}
SCRIPT_BOOLEANS = {flag for flag, (_, _, kind) in SCRIPT_FLAGS.items() if kind is bool} | {
    "enable_xformers_memory_efficient_attention"
}

ACCELERATE_FLAGS = {
    "mixed_precision": ("train", "mixed_precision", str),
    "num_processes": ("launch", "num_processes", int),
    "multi_gpu": ("launch", "multi_gpu", bool),
    "gpu_ids": ("launch", "gpu_ids", str),
    "config_file": ("launch", "config_file", str),
}
ACCELERATE_BOOLEANS = {"multi_gpu", "cpu", "quiet", "debug", "no_python", "module", "tpu", "use_deepspeed",
                       "use_fsdp", "use_megatron_lm", "same_network", "enable_cpu_affinity"}
SCRIPTS = ("train_text_to_image_lora.py", "train_text_to_image_lora_sdxl.py")
TRACKER_EXTRAS = ("tensorboard", "wandb")  # each installs with `pip install 'loratui[NAME]'`


def convert_command(argv: list[str]) -> tuple[Spec, list[str]]:
    """The spec a seed-script command line trains, and notes on flags that were dropped."""
    if len(argv) == 1:
        argv = shlex.split(argv[0])
    argv = [token for token in argv if token != "\\"]
    launcher, script, script_args = _split(argv)
    values: dict = {}
    notes: list[str] = []
    script_set = _parse(script_args, SCRIPT_FLAGS, SCRIPT_BOOLEANS, SCRIPT_IGNORED, script, notes)
    launch_set = _parse(launcher, ACCELERATE_FLAGS, ACCELERATE_BOOLEANS, {}, "accelerate launch", notes)
    for (section, field), value in SCRIPT_DEFAULTS.items():
        values.setdefault(section, {})[field] = value
    # The script's own --mixed_precision overrides accelerate's, as in the script.
    for parsed in (launch_set, script_set):
        for (section, field), value in parsed.items():
            values.setdefault(section, {})[field] = value
    train = values["train"]
    if ("train", "max_steps") in script_set:
        train["num_epochs"] = 0
    _fit_warmup(train, ("train", "lr_warmup_steps") in script_set, notes)
    if ("train", "seed") not in script_set:
        notes.append("the command set no seed; loratui always seeds its runs (seed = 1337)")
    values["lora"] = {"alpha": float(values.get("lora", {}).get("rank", 4)), **values.get("lora", {})}
    _installed_tracker(values["output"], ("output", "report_to") in script_set, notes)
    if "model" not in values or "data" not in values:
        missing = "--pretrained_model_name_or_path" if "model" not in values else "--dataset_name or --train_data_dir"
        raise LoratuiError(f"the command has no {missing}", hint="the seed script needs it too; add it and convert again")
    values["name"] = _name(values)
    values["task"] = TEXT_TO_IMAGE.name
    return parse_spec(values, "the converted command"), notes


def _fit_warmup(train: dict, explicit: bool, notes: list[str]) -> None:
    """The warm-up as the script would have used it: none with the constant schedule (diffusers' get_scheduler
    ignores it there), else shorter than a max_steps it would outlast (the rate would never peak), with a note."""
    warmup, steps = train.get("lr_warmup_steps", 0), train.get("max_steps", 0)
    if not warmup:
        return
    given = f"--lr_warmup_steps={warmup}" if explicit else f"the script's default lr_warmup_steps ({warmup})"
    if train.get("lr_scheduler") == "constant":
        train["lr_warmup_steps"] = 0
        if explicit:
            notes.append(f"{given} dropped: the constant schedule has no warm-up (constant_with_warmup has)")
    elif steps and warmup >= steps:
        train["lr_warmup_steps"] = steps // 10
        notes.append(f"{given} is not below --max_train_steps={steps}, so the learning rate would never peak: "
                     f"lr_warmup_steps = {steps // 10} (a tenth of the run)")


def _installed_tracker(output: dict, explicit: bool, notes: list[str]) -> None:
    """A tracker that is not installed becomes "none", so the converted spec validates and runs here."""
    tracker = output["report_to"]
    # Other values (the script's "all", "comet_ml") are left for the spec to refuse, naming what is allowed.
    if tracker not in TRACKER_EXTRAS or importlib.util.find_spec(tracker) is not None:
        return
    output["report_to"] = "none"
    asked = f"--report_to={tracker}:" if explicit else f"the script reports to {tracker} by default, but"
    notes.append(f"{asked} {tracker} is not installed, so report_to = \"none\" "
                 f"(pip install 'loratui[{tracker}]', then set report_to = \"{tracker}\" to log there)")


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """(accelerate options, script name, script options)."""
    for index, token in enumerate(argv):
        if PurePath(token).name in SCRIPTS or token.endswith(".py"):
            head = argv[:index]
            if head[:2] == ["accelerate", "launch"]:
                head = head[2:]
            elif head and PurePath(head[0]).name.startswith("python"):
                head = [t for t in head[1:] if t not in ("-u",)]
            if PurePath(token).name not in SCRIPTS:
                raise LoratuiError(f"'{PurePath(token).name}' is not a script loratui can convert",
                                   hint="supported: " + ", ".join(SCRIPTS))
            return head, PurePath(token).name, argv[index + 1:]
    raise LoratuiError("no training script in the command",
                       hint="pass it after `--`: loratui spec convert -- accelerate launch train_text_to_image_lora.py ...")


def _parse(tokens, flags, booleans, ignored, where, notes) -> dict:
    found: dict = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("--"):
            raise LoratuiError(f"unexpected argument '{token}' for {where}", hint="flags look like --name=value")
        name, eq, value = token[2:].partition("=")
        name = name.replace("-", "_")
        if not eq and name not in booleans:
            if index >= len(tokens):
                raise LoratuiError(f"--{name} needs a value", hint=f"write --{name}=VALUE")
            value = tokens[index]
            index += 1
        if name in ignored:
            notes.append(f"--{name} dropped: {ignored[name]}")
            continue
        if name not in flags:
            if flags is ACCELERATE_FLAGS:
                notes.append(f"accelerate option --{name} dropped: set it in your accelerate config")
                continue
            raise LoratuiError(f"unknown flag --{name} for {where}",
                               hint="loratui converts the flags of the diffusers example scripts; remove this one")
        section, field, kind = flags[name]
        found[(section, field)] = _value(name, value if eq or name not in booleans else "true", kind)
    return found


def _value(name: str, raw: str, kind):
    raw = _expand(name, raw)
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    try:
        if kind is float:
            return float(raw)
        if kind is int:
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            return int(number)
    except ValueError:
        kind_name = "a whole number" if kind is int else "a number"
        raise LoratuiError(f"--{name}: '{raw}' is not {kind_name}", hint=f"pass {kind_name}, e.g. --{name}=1") from None
    return raw


def _expand(name: str, raw: str) -> str:
    expanded = os.path.expandvars(raw)
    unresolved = re.search(r"\$\{?(\w+)", expanded)
    if unresolved:
        raise LoratuiError(f"--{name} uses ${unresolved.group(1)}, which is not set",
                           hint=f"export {unresolved.group(1)}=... first, or write the value in the command")
    return expanded


def _name(values: dict) -> str:
    """The run's name: the Hub repository it goes to, else its dataset's name; never the output folder's, which
    says only where the run goes."""
    hub = values.get("output", {}).get("hub_model_id", "")
    base = hub.split("/")[-1] if hub else f"{PurePath(values['data']['source'].split(':')[-1]).name}-lora"
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")
    return base or "converted"
