"""The run spec: one TOML file, validated once and fully, before any model loads.

No torch here: the dashboard's form and `loratui spec` read these models (their field descriptions too).
Every problem is reported at once, each as `section.field: what is wrong (allowed: ...)`.
"""

import difflib
import hashlib
import json
import re
import tomllib
import typing
from pathlib import Path
from typing import ClassVar, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.errors import LoratuiError
from engine.tasks import DEFAULT_TASK, TASKS, spec_model

LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")


class _Section(BaseModel):
    # strict: TOML is typed, so "4" for an integer is a mistake worth reporting, not coercing.
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class ModelSection(_Section):
    pretrained: str = Field(
        min_length=1,
        description="Base model: a Hub id (stable-diffusion-v1-5/stable-diffusion-v1-5), a local folder, or builtin:NAME",
        json_schema_extra={"example": "builtin:tiny-sd"},
    )
    revision: str = Field("main", description="Hub revision (branch, tag or commit) of the base model")
    variant: str = Field("", description="Weight variant to load, such as fp16; empty for the default files")


def column_role(role: str, kinds: tuple[str, ...], preferred: tuple[str, ...], *, format: str = "",
                optional: bool = False) -> dict:
    """What a `*_column` field of a task's [data] names, for Browse to pick and check a dataset's columns:
    the role, the column types that fit (best first; a trailing * matches a prefix), names tried first; for a
    task whose data comes in alternative formats, the format the column belongs to and whether it may be left
    out (DataSection.resolve_columns says which format a dataset's columns are)."""
    return {"role": role, "kinds": list(kinds), "preferred": list(preferred), "format": format,
            "optional": optional}


class DataSection(_Section):
    source: str = Field(
        min_length=1,
        description="Training data: a Hub dataset id, a local imagefolder, a csv/jsonl/parquet file, or builtin:NAME",
        json_schema_extra={"example": "builtin:shapes"},
    )
    config: str = Field("", description="Dataset configuration name; empty when the dataset has only one")
    split: str = Field("train", min_length=1, description="Split to train on, such as train or train[:500]")
    max_samples: int = Field(0, ge=0, description="Train on at most this many rows, chosen with the seed; 0 uses all")

    # The task's `*_column` fields whose columns hold images: a csv/jsonl names those files by path.
    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def columns(self) -> dict[str, str]:
        """{field: column} for every `*_column` field a task's [data] declares; an empty one is unused."""
        return {name: value for name, value in self.model_dump().items() if name.endswith("_column") and value}

    def image_columns(self) -> list[str]:
        return [getattr(self, name) for name in self.IMAGE_FIELDS if getattr(self, name)]

    def resolve_columns(self, column_names: list[str]) -> tuple[dict[str, str], list[str]]:
        """({field: column} a run reads from a dataset with these columns, problems naming the field): a task
        whose data has one layout reads the columns named; one with alternative formats decides here."""
        return self.columns(), []


class LoftqSection(_Section):
    bits: int = Field(4, ge=2, le=8, description="LoftQ: bits of the quantised base weights the LoRA starts from")
    iter: int = Field(1, gt=0, description="LoftQ: alternating steps between quantising and the LoRA fit")


class LoraSection(_Section):
    """peft's LoraConfig, field for field (engine/lora_config.py turns it into one)."""

    rank: int = Field(4, gt=0, description="Inner dimension of the LoRA matrices; higher trains more parameters")
    alpha: float = Field(4.0, gt=0, description="LoRA scaling numerator: the update is scaled by alpha / rank")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input during training")
    init: Literal["default", "gaussian", "pissa", "olora", "loftq"] = Field(
        "default", description="Initialisation: default (Kaiming A, zero B), gaussian, pissa or olora (from the "
        "weights' own decomposition), loftq (fitted to a quantised base, see [lora.loftq])"
    )
    target_modules: list[str] | Literal["all-linear"] = Field(
        min_length=1, description='Modules that get a LoRA: names (matched as suffixes) or "all-linear"'
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        "none", description="Biases that train too: none, all of them, or those of the LoRA-wrapped layers"
    )
    use_rslora: bool = Field(False, description="Rank-stabilised scaling: alpha / sqrt(rank) instead of alpha / rank")
    use_dora: bool = Field(False, description="DoRA: also learn each weight's magnitude (Linear and Conv2d layers)")
    modules_to_save: list[str] = Field(
        [], description="Modules trained in full and saved with the adapter, such as a new classification head"
    )
    layers_to_transform: list[int] = Field([], description="Only these layer indices get a LoRA; empty: all layers")
    layers_pattern: str = Field("", description="Name of the layer list that layers_to_transform indexes, e.g. layers")
    rank_pattern: dict[str, int] = Field({}, description="Rank per module, by regex: {\"^.*q_proj\" = 16}")
    alpha_pattern: dict[str, float] = Field({}, description="Alpha per module, by regex, like rank_pattern")
    loftq: LoftqSection = Field(default_factory=LoftqSection, description='LoftQ settings, used with init = "loftq"')


class TrainSection(_Section):
    batch_size: int = Field(1, gt=0, description="Examples per device per micro-step")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-steps accumulated into one optimizer step")
    max_steps: int = Field(0, ge=0, description="Optimizer steps to train; 0 uses num_epochs instead")
    num_epochs: int = Field(0, ge=0, description="Passes over the data, used when max_steps is 0")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate, reached after the warm-up")
    scale_lr: bool = Field(
        False, description="Multiply the learning rate by batch size, accumulation steps and process count"
    )
    lr_scheduler: Literal[LR_SCHEDULERS] = Field("constant", description="Learning-rate schedule")
    lr_warmup_steps: int = Field(0, ge=0, description="Steps of linear warm-up at the start")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1")
    adam_beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2")
    adam_epsilon: float = Field(1e-8, gt=0, description="AdamW epsilon")
    adam_weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay")
    use_8bit_adam: bool = Field(False, description="8-bit AdamW from bitsandbytes (CUDA only), to save memory")
    max_grad_norm: float = Field(1.0, ge=0, description="Clip the gradient norm to this; 0 turns clipping off")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        "no", description="Compute precision; the LoRA weights themselves always stay fp32"
    )
    allow_tf32: bool = Field(False, description="Allow TF32 matmuls on Ampere and newer GPUs (faster, less exact)")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward: less memory, slower")
    dataloader_num_workers: int = Field(0, ge=0, description="Data-loading worker processes; 0 loads in the trainer")
    seed: int = Field(1337, ge=0, description="Seed for LoRA init, data order, augmentation and noise")
    log_every_steps: int = Field(10, gt=0, description="Emit a step event (loss, lr, speed, memory) every N steps")
    checkpointing_steps: int = Field(500, ge=0, description="Save a resumable checkpoint every N steps; 0 never")
    checkpoints_total_limit: int = Field(3, ge=0, description="Keep at most this many checkpoints; 0 keeps all")
    resume_from_checkpoint: str = Field(
        "", description='Continue a run: "latest" (newest complete checkpoint) or a checkpoint folder; empty starts fresh'
    )
    on_nan: Literal["stop", "skip"] = Field(
        "stop", description="A NaN or infinite loss: stop the run, or skip that step's update"
    )
    nan_skip_limit: int = Field(10, ge=0, description='With on_nan = "skip": stop once more steps than this are skipped')
    compile: bool = Field(False, description="Compile the trained model with torch.compile: a slower start, "
                          "faster steps")

    @model_validator(mode="after")
    def _length(self):
        given = self.model_fields_set
        problem = _length_problem(self.max_steps, self.num_epochs) or _warmup_problem(
            self.max_steps if "max_steps" in given else None, self.lr_warmup_steps if "lr_warmup_steps" in given else None)
        if problem:
            raise ValueError(problem)
        return self


def _length_problem(max_steps: int, num_epochs: int) -> str | None:
    # Cross-field messages start with the field they are about: _describe puts the section before it.
    if max_steps and num_epochs:
        return "max_steps: set max_steps or num_epochs, not both (num_epochs is also set)"
    if not max_steps and not num_epochs:
        return "max_steps: set max_steps or num_epochs (both are 0)"
    return None


def _warmup_problem(max_steps: int | None, warmup: int | None) -> str | None:
    """A warm-up as long as the run, both as the user set them (None: not set): the rate never peaks."""
    if max_steps and warmup is not None and warmup >= max_steps:
        return (f"lr_warmup_steps: {warmup} is not below max_steps ({max_steps}): the learning rate would never "
                f"reach learning_rate (allowed: 0 to {max_steps - 1})")
    return None


class EvalSection(_Section):
    split: str = Field("", description="Split of data.source to evaluate on, such as test; empty: see split_ratio")
    split_ratio: float = Field(
        0.0, ge=0, lt=1, description="Share of the training rows held out for evaluation (chosen with the seed); "
        "used when split is empty; 0 with an empty split: no evaluation"
    )
    every_steps: int = Field(0, ge=0, description="Evaluate every N steps; 0 never (always before and after training)")
    every_epochs: int = Field(0, ge=0, description="Evaluate every N epochs; 0 never")
    batch_size: int = Field(0, ge=0, description="Examples per device per evaluation batch; 0 uses train.batch_size")
    max_samples: int = Field(0, ge=0, description="Evaluate on at most this many rows, chosen with the seed; 0: all")
    keep_best: str = Field(
        "", description="Also keep the adapter of the best evaluation by this metric (e.g. accuracy; a *loss is "
        "best when lowest) in the run folder's best/; empty keeps none"
    )

    @model_validator(mode="after")
    def _one_source(self):
        if self.split and self.split_ratio:
            raise ValueError("split_ratio: set split or split_ratio, not both (split is also set)")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.split or self.split_ratio)


class OutputSection(_Section):
    dir: str = Field("", description="Run folder; empty uses LORATUI_HOME/runs/<name>-<timestamp>")
    push_to_hub: bool = Field(False, description="Upload the adapter to the Hub at the end (token from HF_TOKEN)")
    hub_model_id: str = Field("", description="Hub repository for push_to_hub; empty uses the run name")
    hub_private: bool = Field(False, description="Create the Hub repository as private")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="Also log metrics to this tracker (events.jsonl is always written)"
    )


class LaunchSection(_Section):
    num_processes: int = Field(0, ge=0, description="Training processes over all machines; 0 takes the accelerate config (or 1)")
    multi_gpu: bool = Field(False, description="Distributed data parallel across processes (accelerate --multi_gpu)")
    gpu_ids: str = Field("", description='GPUs to use, such as "0,1"; empty uses all visible')
    config_file: str = Field("", description="accelerate config file; empty uses your default accelerate config")
    distributed: Literal["auto", "ddp", "fsdp", "deepspeed"] = Field(
        "auto", description="How processes share the work: auto takes the accelerate config, else data parallel "
        "(ddp) when there are several processes; fsdp shards the model (causal-lm only)"
    )
    num_machines: int = Field(0, ge=0, description="Machines taking part; 0 takes the accelerate config (or 1)")
    machine_rank: int = Field(0, ge=0, description="This machine's rank, 0 for the main one; "
                              "`loratui run --machine-rank K` sets it on each of the others")
    main_process_ip: str = Field("", description="Address of the main machine (machine_rank 0), for several machines")
    main_process_port: int = Field(0, ge=0, le=65535, description="Port on the main machine; 0 picks a free one "
                                   "(one machine only: several machines need the same port on each)")
    timeout_s: int = Field(600, gt=0, description="Seconds a process waits for the others at a synchronisation "
                           "before the run fails (a process that died never hangs the rest)")

    @model_validator(mode="after")
    def _machines(self):
        if self.num_machines > 1 and not self.main_process_ip:
            raise ValueError("main_process_ip: several machines (num_machines > 1) need the main machine's address")
        if self.num_machines > 1 and not self.main_process_port:
            raise ValueError("main_process_port: several machines (num_machines > 1) need a port set in the spec, "
                             "the same on every machine")
        if self.num_machines and self.machine_rank >= self.num_machines:  # else the accelerate config's count
            raise ValueError(f"machine_rank: {self.machine_rank} is not below num_machines ({self.num_machines})")
        return self


class Spec(_Section):
    """The sections every task shares; each task's spec (engine/tasks/<task>/spec.py) subclasses it, narrowing
    `task` and giving [data], [lora] and [train] the fields of its own, and adding sections it needs."""

    name: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Run name (letters, digits, . _ -); the run folder is named after it",
        json_schema_extra={"example": "shapes-demo"},
    )
    task: Literal[TASKS] = Field(DEFAULT_TASK, description="What to train")
    model: ModelSection = Field(description="The base model")
    data: DataSection = Field(description="The training data")
    lora: LoraSection = Field(description="The adapter")
    train: TrainSection = Field(description="Optimisation, checkpoints")
    eval: EvalSection = Field(default_factory=EvalSection, description="Evaluation during training")
    output: OutputSection = Field(default_factory=OutputSection, description="Where the run goes")
    launch: LaunchSection = Field(default_factory=LaunchSection, description="How accelerate launches the run")

    def to_toml(self, *, given_only: bool = False) -> str:
        """Every field, as a run stores what it trains with; given_only: only those the spec set, so that
        defaults keep following the model when it is checked again (a queued spec)."""
        return tomli_w.dumps(self.model_dump(exclude_unset=given_only))

    def hash(self) -> str:
        """Identifies the settings; the same spec always hashes the same."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class SpecError(LoratuiError):
    """A spec with problems; `errors` holds one `section.field: ...` line per problem."""

    def __init__(self, errors: list[str], source: str = "spec", notes: list[str] = ()) -> None:
        self.errors = errors
        noun = "problem" if len(errors) == 1 else "problems"
        lines = [f"  {e}" for e in errors] + [f"  note: {n}" for n in notes]
        message = f"{source} is not valid ({len(errors)} {noun}):\n" + "\n".join(lines)
        super().__init__(message, hint="fix the fields named above; `loratui spec new` prints a commented template")


def spec_errors(data: dict) -> list[str]:
    """Every problem in a spec given as a dict (the parsed TOML); empty when it is valid. Pure and cheap.
    The spec is judged as a spec of its `task` (text-to-image when it names none)."""
    task = data.get("task", DEFAULT_TASK) if isinstance(data, dict) else DEFAULT_TASK
    if task not in TASKS:  # which sections and fields exist depends on the task
        return [f"task: {task!r} is not allowed (allowed: {', '.join(TASKS)})"]
    model = spec_model(task)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        return _describe_all(errors, model) + _cross_field_errors(data, errors, model)
    return []


_UNION_MEMBER = re.compile(r"^(\w+)\[(.*)\]$")  # pydantic names a union's member in the loc: list[str]


def _describe_all(errors: list[dict], model) -> list[str]:
    """One line per error; a value that fits no member of a union (a list, or "all-linear") is one line."""
    lines, unions = [], {}
    for err in errors:
        loc = tuple(str(part) for part in err["loc"])
        member = next((i for i, part in enumerate(loc) if _UNION_MEMBER.match(part)), None)
        if member is None:
            lines.append(_describe(err, model))
            continue
        where = ".".join(loc[:member])
        kind, args = _UNION_MEMBER.match(loc[member]).groups()
        if where not in unions:
            unions[where] = (len(lines), err.get("input"), [])
            lines.append("")
        unions[where][2].append(args if kind == "literal" else f"a {kind}")
    for where, (index, got, members) in unions.items():
        lines[index] = f"{where}: {got!r} is not allowed (allowed: {' or '.join(members)})"
    return lines


def validate(data: dict) -> "Spec":
    """The spec of its task's class (pydantic's ValidationError on a problem; spec_errors says them all)."""
    task = data.get("task", DEFAULT_TASK) if isinstance(data, dict) else DEFAULT_TASK
    return spec_model(task if task in TASKS else DEFAULT_TASK).model_validate(data)


def field_is_valid(errors: list[str], name: str) -> bool:
    """Whether `name` ("train.resolution"), the sections holding it and the fields inside it have no
    problem among `errors` (spec_errors' lines, each starting with the field it is about)."""
    bad = {error.split(":", 1)[0] for error in errors}
    parts = name.split(".")
    enclosing = {"spec", *(".".join(parts[: i + 1]) for i in range(len(parts)))}
    return not any(b in enclosing or b.startswith(name + ".") for b in bad)


# Checks across fields of one section: the section, the fields they read, the check, and whether a field the
# spec leaves out is read as its default (else as None). Pydantic runs a section's model validator only when
# all its fields are valid; these run whenever the fields they read are.
_CROSS_FIELD = (("train", ("max_steps", "num_epochs"), _length_problem, True),
                ("train", ("max_steps", "lr_warmup_steps"), _warmup_problem, False))


def _cross_field_errors(data, errors: list[dict], model: type["Spec"]) -> list[str]:
    bad = {tuple(str(part) for part in err["loc"]) for err in errors}
    found = []
    for section, names, check, defaults in _CROSS_FIELD:
        raw = data.get(section) if isinstance(data, dict) else None
        section_bad = {loc[1:] for loc in bad if loc[:1] == (section,)}
        # Run only where pydantic did not: the section has other field errors, none in the fields read here.
        if not isinstance(raw, dict) or not section_bad or () in section_bad:
            continue
        if any((name,) in section_bad for name in names):
            continue
        fields = model.model_fields[section].annotation.model_fields
        values = [raw.get(name, fields[name].get_default(call_default_factory=True) if defaults else None)
                  for name in names]
        problem = check(*values)
        if problem:
            found.append(f"{section}.{problem}")
    return found


def parse_spec(data: dict, source: str = "spec") -> Spec:
    errors = spec_errors(data)
    if errors:
        raise SpecError(errors, source)
    return validate(data)


def load_spec(path: Path | str) -> Spec:
    return parse_spec(read_spec_file(path), str(path))


def read_spec_file(path: Path | str) -> dict:
    """A spec file's TOML as a dict, not yet validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoratuiError(f"spec file not found: {path}", hint="`loratui spec new > run.toml` writes one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoratuiError(f"cannot read spec {path}: {exc}", hint="pass a readable UTF-8 TOML file") from None
    return _toml(text, str(path))


def parse_toml(text: str, source: str = "spec") -> Spec:
    return parse_spec(_toml(text, source), source)


def _toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LoratuiError(f"{source} is not valid TOML: {exc}", hint="check the line named above") from None


def _allowed(loc: tuple, model: type[BaseModel]) -> list[str]:
    """Field names at `loc` (a path of section names), for 'unknown field' messages."""
    for part in loc:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_TYPES = {
    "int_type": "an integer", "int_from_float": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list",
    "model_type": "a table", "dict_type": "a table", "model_attributes_type": "a table",
}
# How alike a misspelt field must be to a real one to be suggested: 0.7 takes `lerning_rate` and `trian`, not
# `extra` for train (difflib's default 0.6 does).
_CLOSE = 0.7
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _describe(err: dict, model: type[BaseModel]) -> str:
    loc = tuple(str(part) for part in err["loc"])
    kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    where = ".".join(loc) if loc else "spec"
    if kind == "missing":
        return f"{where}: required"
    if kind == "extra_forbidden":
        allowed = _allowed(loc[:-1], model)
        close = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=_CLOSE) if loc else []
        if close:
            return f"{where}: unknown field (did you mean {close[0]}?)"
        return f"{where}: unknown field (allowed: {', '.join(allowed)})"
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "")
        return f"{where}: {got!r} is not allowed (allowed: {expected.replace(' or ', ', ')})"
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        return f"{where}: must be {_BOUNDS[kind]} {limit} (got {got!r})"
    if kind in _TYPES:
        return f"{where}: expected {_TYPES[kind]} (got {got!r})"
    if kind in ("too_short", "string_too_short"):
        return f"{where}: must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{where}: {got!r} has characters that are not allowed (allowed: letters, digits, . _ -)"
    if kind == "value_error":
        return f"{where}.{err['msg'].removeprefix('Value error, ')}"
    return f"{where}: {err['msg']}"


def field_docs(model: type[BaseModel] | None = None) -> dict[str, dict]:
    """Description, default and allowed values of every field, by section, of a task's spec (default:
    text-to-image's): what forms and templates show."""
    model = model or spec_model(DEFAULT_TASK)
    docs: dict[str, dict] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs[name] = field_docs(annotation)
            continue
        allowed = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
        docs[name] = {
            "description": field.description or "",
            "default": None if field.is_required() else field.get_default(call_default_factory=True),
            "example": (field.json_schema_extra or {}).get("example"),
            "allowed": list(allowed),
        }
    return docs
