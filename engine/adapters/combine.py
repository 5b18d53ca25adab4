"""Combine LoRA adapters into a new one with PEFT's add_weighted_adapter.

Combining needs only the adapters: each part (UNet, text encoders, or a language model) gets a skeleton
model whose layers have the shapes the LoRA weights imply and no real weights, so no base model is loaded.
Output: one diffusers-format safetensors file for diffusion adapters, a PEFT folder for LLM adapters (with the
tokenizer its parents were trained with).
"""

import dataclasses
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from engine.adapters import extras
from engine.adapters.combine_options import EQUAL_RANK, check_options, density_of
from engine.adapters.load import (
    DIFFUSERS_WEIGHTS,
    PEFT,
    PEFT_WEIGHTS,
    adapter_file,
    adapter_kind,
    peft_folder,
)
from engine.adapters.names import COMPANION_NAMES
from engine.atomic import staged_folder
from engine.errors import LoratuiError

DIFFUSION_PARTS = ("unet", "text_encoder", "text_encoder_2")
LLM_PART = "model"
PEFT_PREFIX = "base_model.model."


@dataclass
class Part:
    """One model part of one adapter: PEFT-style keys without prefix or adapter name, and its LoraConfig."""

    state: dict
    config: object


def read_parts(path: Path) -> dict[str, Part]:
    """The parts of the adapter at `path`: UNet and text encoders, or LLM_PART for a PEFT folder."""
    if adapter_kind(path) == PEFT:
        return {LLM_PART: _read_peft(peft_folder(path))}
    return _read_diffusers(adapter_file(path))


def _read_peft(folder: Path) -> Part:
    from peft import LoraConfig
    from safetensors.torch import load_file

    config = LoraConfig.from_pretrained(str(folder))
    state = load_file(folder / PEFT_WEIGHTS)
    return Part({k.removeprefix(PEFT_PREFIX): v for k, v in state.items()}, config)


def _read_diffusers(file: Path) -> dict[str, Part]:
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import (
        convert_state_dict_to_diffusers,
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )
    from diffusers.utils.peft_utils import get_peft_kwargs
    from peft import LoraConfig

    # The SDXL loader reads diffusers and kohya keys for all three parts (SD 1.x files are a subset).
    state, alphas, metadata = StableDiffusionXLPipeline.lora_state_dict(
        str(file.parent), weight_name=file.name, use_safetensors=True, return_lora_metadata=True
    )
    stray = [k for k in state if k.split(".")[0] not in DIFFUSION_PARTS]
    if stray:
        raise LoratuiError(
            f"{file.name}: {len(stray)} key(s) belong to no UNet or text encoder, e.g. {stray[0]}",
            hint="only Stable Diffusion (1.x/2.x/XL) LoRA files can be combined",
        )
    parts = {}
    for name in DIFFUSION_PARTS:

        def own(mapping, name=name):
            return {k[len(name) + 1 :]: v for k, v in (mapping or {}).items() if k.startswith(name + ".")}

        part = own(state)
        if not part:
            continue
        if "lora_A" not in next(iter(part)):
            part = (
                convert_unet_state_dict_to_peft(part)
                if name == "unet"
                else convert_state_dict_to_peft(convert_state_dict_to_diffusers(part))
            )
        # Current CLIP models have no "text_model." level; old files do.
        part = {k.removeprefix("text_model."): v for k, v in part.items()}
        ranks = {k: v.shape[1] for k, v in part.items() if "lora_B" in k and v.ndim > 1}
        kwargs = own(metadata) or get_peft_kwargs(ranks, own(alphas), part, is_unet=name == "unet")
        parts[name] = Part(part, LoraConfig(**kwargs))
    return parts


def combine(
    parents: list[Path],
    weights: list[float],
    out: Path,
    *,
    method: str = "cat",
    density: float | None = None,
    rank: int | None = None,
    seed: int = 0,
    names: list[str] | None = None,
) -> Path:
    """Write the combination of `parents` (files or PEFT folders) to the folder `out`; returns what was written.

    `names` label the parents in error messages. The folder is created complete or not at all.
    """
    check_options(method, weights, len(parents), density, rank)
    density = density_of(method, density)
    out = Path(out)
    if out.exists():
        raise LoratuiError(f"{out} already exists", hint="choose another name or output folder")
    kinds = {adapter_kind(Path(p)) for p in parents}
    if len(kinds) > 1:
        raise LoratuiError(
            "cannot combine a language-model adapter (PEFT folder) with a diffusion LoRA file",
            hint="combine adapters made for the same base model",
        )
    adapters = [read_parts(Path(p)) for p in parents]
    labels = names or [_label(Path(p)) for p in parents]
    kept, companions = {}, []
    if LLM_PART in adapters[0]:
        companions = _agreed_companions(labels, [Path(p) for p in parents])  # heads and biases trained in full go in unchanged, when all parents agree
        states = [extras.split(a[LLM_PART].state) for a in adapters]
        kept = extras.agreed(labels, [full for _, full in states])
        for a, (lora, _) in zip(adapters, states, strict=True):
            a[LLM_PART] = Part(lora, a[LLM_PART].config)
    combined = {}
    for name in (*DIFFUSION_PARTS, LLM_PART):
        members = [(i, a[name]) for i, a in enumerate(adapters) if name in a]
        if not members:
            continue
        with warnings.catch_warnings():
            # PEFT warns that a skeleton has no config file and no base path: both expected here.
            warnings.simplefilter("ignore", UserWarning)
            combined[name] = _combine_part(
                name,
                [labels[i] for i, _ in members],
                [p for _, p in members],
                [weights[i] for i, _ in members],
                method,
                density,
                rank,
                seed,
            )
    with staged_folder(out) as tmp:
        if LLM_PART in combined:
            combined[LLM_PART].state.update(kept)
            _write_peft(tmp, combined[LLM_PART], adapters[0][LLM_PART].config)
            for file in companions:
                shutil.copyfile(file, tmp / file.name)
        else:
            _write_diffusers(tmp, combined)
        os.rename(tmp, out)
    return out if LLM_PART in combined else out / DIFFUSERS_WEIGHTS


def _agreed_companions(labels: list[str], folders: list[Path]) -> list[Path]:
    """The first parent's tokenizer and generation config files, when every parent holds the very same ones: the
    combination is prompted as its parents were trained, and adapters trained with other templates or tokens
    cannot be combined."""
    found = [{name: folder / name for name in COMPANION_NAMES if (folder / name).is_file()} for folder in folders]
    for label, files in zip(labels[1:], found[1:], strict=True):
        for name in sorted(set(found[0]) | set(files)):
            if name not in found[0] or name not in files or found[0][name].read_bytes() != files[name].read_bytes():
                raise LoratuiError(f"{labels[0]} and {label} differ in {name}: they were trained with other "
                                   "tokenizers or chat templates", hint="combine adapters trained with the same "
                                   "base and data.template")
    return list(found[0].values())


def _label(path: Path) -> str:
    """A name for an adapter path: its folder when the file has a standard name."""
    return path.parent.name if path.name in (DIFFUSERS_WEIGHTS, PEFT_WEIGHTS) else path.name


def _combine_part(name, labels, parts, weights, method, density, rank, seed) -> Part:
    import torch
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    _check_keys(name, labels, parts)
    shapes = _check_shapes(name, labels, parts)
    if method in EQUAL_RANK:
        _check_equal_ranks(name, method, labels, parts)
    dtypes = {t.dtype for p in parts for t in p.state.values()}
    model = None
    for i, part in enumerate(parts):
        config = dataclasses.replace(part.config, task_type=None, inference_mode=False)
        if model is None:
            model = get_peft_model(_skeleton(shapes), config, adapter_name=f"p{i}")
        else:
            model.add_adapter(f"p{i}", config)
        state = {PEFT_PREFIX + k: v.float() for k, v in part.state.items()}
        result = set_peft_model_state_dict(model, state, adapter_name=f"p{i}")
        # Without a matching prefix PEFT loads nothing and says nothing; count what landed.
        if result.unexpected_keys:
            raise LoratuiError(
                f"{labels[i]} ({name}): {len(result.unexpected_keys)} tensors did not load, "
                f"e.g. {result.unexpected_keys[0]}",
                hint="the adapter file may be damaged or in an unsupported layout",
            )
    torch.manual_seed(seed)  # dare_* methods drop weights at random
    try:
        model.add_weighted_adapter(
            [f"p{i}" for i in range(len(parts))],
            list(weights),
            "combined",
            combination_type=method,
            svd_rank=rank,
            density=density,
        )
    except (ValueError, RuntimeError) as exc:
        raise LoratuiError(
            f"{method} failed on the {name} weights: {exc}", hint="try --method cat or svd"
        ) from exc
    state = get_peft_model_state_dict(model, adapter_name="combined")
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    # SVD factors are views into larger tensors; safetensors needs each tensor contiguous and alone.
    state = {k.removeprefix(PEFT_PREFIX): v.to(dtype).contiguous().clone() for k, v in state.items()}
    return Part(state, model.peft_config["combined"])


def _check_keys(name: str, labels: list[str], parts: list[Part]) -> None:
    for label, part in zip(labels, parts, strict=True):
        if any("lora_magnitude_vector" in k for k in part.state):
            raise LoratuiError(f"{label} is a DoRA adapter; DoRA adapters cannot be combined")
        odd = [k for k in part.state if not k.endswith(extras.LORA_SUFFIXES)]
        if odd:
            raise LoratuiError(
                f"{label} ({name}) holds {len(odd)} tensor(s) that are not LoRA factors, e.g. {odd[0]}",
                hint="adapters with modules_to_save, LoRA biases or other extras cannot be combined",
            )


def _module_shapes(part: Part) -> dict[str, tuple]:
    """Module path -> ("linear"|"conv"|"embedding", A shape, B shape)."""
    shapes = {}
    for key, a in part.state.items():
        for suffix, b_suffix, kind in (
            (".lora_A.weight", ".lora_B.weight", None),
            (".lora_embedding_A", ".lora_embedding_B", "embedding"),
        ):
            if key.endswith(suffix):
                path = key[: -len(suffix)]
                b = part.state[path + b_suffix]
                shapes[path] = (kind or ("conv" if a.ndim == 4 else "linear"), tuple(a.shape), tuple(b.shape))
    return shapes


def _check_shapes(name: str, labels: list[str], parts: list[Part]) -> dict[str, tuple]:
    """The union of module shapes; refuses adapters whose layers disagree (made for different bases)."""
    union: dict[str, tuple] = {}
    owner: dict[str, str] = {}
    for label, part in zip(labels, parts, strict=True):
        for path, shape in _module_shapes(part).items():
            if path in union and _outer(union[path]) != _outer(shape):
                raise LoratuiError(
                    f"{label} and {owner[path]} do not fit the same base model: layer {name}.{path} differs",
                    hint="combine adapters trained on the same base model",
                )
            union.setdefault(path, shape)
            owner.setdefault(path, label)
    return union


def _outer(shape: tuple) -> tuple:
    """What a layer's shape says about the base: everything but the rank."""
    kind, a, b = shape
    return kind, a[1:], b[0]


def _check_equal_ranks(name: str, method: str, labels: list[str], parts: list[Part]) -> None:
    ranks = {}
    for label, part in zip(labels, parts, strict=True):
        ranks[label] = sorted({a[0] for _, a, _ in _module_shapes(part).values()})
    if len({r for found in ranks.values() for r in found}) > 1:
        listed = ", ".join(f"{label}: rank {'/'.join(map(str, r))}" for label, r in ranks.items())
        raise LoratuiError(
            f"{method} needs adapters of equal rank, the {name} parts differ ({listed})",
            hint="use --method cat (exact, ranks add up) or --method svd --rank R",
        )


def _skeleton(shapes: dict[str, tuple]):
    """A module tree with the layers PEFT needs to attach LoRA to; weights are zero-stride, using no memory."""
    import torch
    from torch import nn

    root = nn.Module()
    for path, (kind, a, b) in shapes.items():
        if kind == "embedding":
            layer = nn.Embedding(a[1], b[0], device="meta")
        elif kind == "conv":
            layer = nn.Conv2d(a[1], b[0], kernel_size=a[2:], bias=False, device="meta")
        else:
            layer = nn.Linear(a[1], b[0], bias=False, device="meta")
        layer.weight = nn.Parameter(torch.zeros(()).expand(layer.weight.shape), requires_grad=False)
        parent = root
        *heads, last = path.split(".")
        for head in heads:
            if not hasattr(parent, head):
                parent.add_module(head, nn.Module())
            parent = getattr(parent, head)
        parent.add_module(last, layer)
    return root


def _metadata(config) -> dict:
    meta = {"r": config.r, "lora_alpha": config.lora_alpha, "target_modules": sorted(config.target_modules)}
    if config.use_rslora:
        meta["use_rslora"] = True
    return meta


def _write_diffusers(folder: Path, parts: dict[str, Part]) -> None:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    kwargs = {}
    for name, part in parts.items():
        kwargs[f"{name}_lora_layers"] = part.state
        kwargs[f"{name}_lora_adapter_metadata"] = _metadata(part.config)
    loader = StableDiffusionXLPipeline if "text_encoder_2" in parts else StableDiffusionPipeline
    loader.save_lora_weights(str(folder), weight_name=DIFFUSERS_WEIGHTS, **kwargs)


def _write_peft(folder: Path, part: Part, first_parent_config) -> None:
    from safetensors.torch import save_file

    config = dataclasses.replace(
        part.config,
        task_type=first_parent_config.task_type,
        base_model_name_or_path=first_parent_config.base_model_name_or_path,
        modules_to_save=first_parent_config.modules_to_save,
        bias=first_parent_config.bias,
        inference_mode=True,
    )
    config.save_pretrained(str(folder))
    save_file(
        {PEFT_PREFIX + k: v for k, v in part.state.items()}, folder / PEFT_WEIGHTS, metadata={"format": "pt"}
    )
