"""Test generations on a Session: images from diffusion pipelines, text completions from causal LMs.

The same settings and seed give the same output: the noise comes from a CPU generator seeded per call.
An `on_step(k, n)` callback hears of each denoising step (or new token); returning True stops early.
"""

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.adapters.load import DIFFUSION, LANGUAGE
from engine.errors import LoratuiError

OnStep = Callable[[int, int], bool]  # (step done, steps in all) -> stop now?


@dataclass(frozen=True)
class ImageSettings:
    prompt: str
    negative: str | None = None
    seed: int = 0
    steps: int = 25
    guidance: float = 7.5
    width: int | None = None  # None: the pipeline's native size
    height: int | None = None


@dataclass(frozen=True)
class TextSettings:
    prompt: str
    seed: int = 0
    max_new_tokens: int = 40
    temperature: float = 0.0  # 0: greedy
    raw: bool = False  # the prompt as it is, not as a user turn of the chat template the adapter was trained with


def native_size(session) -> tuple[int, int]:
    pipe = session.pipe
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return side, side


def size_multiple(session) -> int:
    """Width and height must be multiples of this: the VAE and every UNet downsampling halve the size."""
    pipe = session.pipe
    return max(8, pipe.vae_scale_factor * 2 ** (len(pipe.unet.down_blocks) - 1))


def check_image_settings(session, settings: ImageSettings) -> tuple[int, int]:
    """The (width, height) to generate at; every bad setting is reported at once."""
    if session.kind != DIFFUSION:
        raise LoratuiError(
            "image generation needs a diffusion pipeline as base", hint="use a text prompt for LLMs"
        )
    width, height = settings.width or native_size(session)[0], settings.height or native_size(session)[1]
    multiple = size_multiple(session)
    errors = []
    if settings.steps < 1:
        errors.append(f"steps: {settings.steps} (need at least 1)")
    for name, value in (("width", width), ("height", height)):
        if value < multiple or value % multiple:
            errors.append(f"{name}: {value} (need a positive multiple of {multiple})")
    if not settings.prompt.strip():
        errors.append("prompt: empty")
    if errors:
        raise LoratuiError("bad generation settings: " + "; ".join(errors), hint="fix the values named above")
    return width, height


def generate_image(session, settings: ImageSettings, on_step: OnStep | None = None):
    """One PIL image from the session's base with its currently active adapters (unfinished if stopped)."""
    import torch

    width, height = check_image_settings(session, settings)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    extra = {}
    if on_step is not None:

        def step_end(pipe, index, timestep, tensors):
            if on_step(index + 1, pipe.num_timesteps):
                pipe._interrupt = True  # diffusers' documented way to stop: the remaining steps are skipped
            return tensors

        extra["callback_on_step_end"] = step_end
    with torch.inference_mode():
        result = session.pipe(
            prompt=settings.prompt,
            negative_prompt=settings.negative,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            width=width,
            height=height,
            generator=generator,
            **extra,
        )
    return result.images[0]


def generate_text(session, settings: TextSettings, on_step: OnStep | None = None) -> str:
    """The completion of `settings.prompt` (new text only) from the session's model and active adapters."""
    import torch

    if session.kind != LANGUAGE:
        raise LoratuiError(
            "text generation needs a language model as base", hint="use --size etc. for images"
        )
    if settings.max_new_tokens < 1:
        raise LoratuiError(f"max new tokens must be at least 1, got {settings.max_new_tokens}")
    tokenizer, model = session.tokenizer, session.model
    if session.chat_template and not settings.raw:  # as training formatted a validation prompt
        text = tokenizer.apply_chat_template([{"role": "user", "content": settings.prompt}], tokenize=False,
                                             add_generation_prompt=True)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(session.device)
    else:
        inputs = tokenizer(settings.prompt, return_tensors="pt").to(session.device)
    sample = settings.temperature > 0
    torch.manual_seed(settings.seed)
    prompt_length = inputs["input_ids"].shape[1]
    watch = None if on_step is None else _token_watch(on_step, prompt_length, settings.max_new_tokens)
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            stopping_criteria=watch,
            max_new_tokens=settings.max_new_tokens,
            do_sample=sample,
            temperature=settings.temperature if sample else None,
            top_p=None,
            top_k=None,
            eos_token_id=session.stop_ids,
            pad_token_id=tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        )
    return tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)


def _token_watch(on_step: OnStep, prompt_length: int, total: int):
    """A stopping criterion that reports each new token to `on_step` and stops when it says so."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Watch(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = bool(on_step(input_ids.shape[1] - prompt_length, total))
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Watch()])


def save_png(image, path: Path, info: dict | None = None) -> Path:
    """Write `image` to `path` atomically, with `info` as JSON in a PNG text chunk ("loratui")."""
    from PIL import PngImagePlugin

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = PngImagePlugin.PngInfo()
    if info is not None:
        meta.add_text("loratui", json.dumps(info, sort_keys=True, default=str))
    tmp = _new_file(path.parent / f".{path.name}.", ".png")
    try:
        image.save(tmp, format="PNG", pnginfo=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _new_file(prefix: Path, suffix: str) -> str:
    """A new, empty file named `prefix`<random>`suffix`, made with the mode the umask leaves (0644 under umask
    022) as any file the user makes: mkstemp's are 0600, which os.replace would pass on to the PNG."""
    while True:
        name = f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return name
