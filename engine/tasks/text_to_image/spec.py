"""The text-to-image spec: images and captions in [data], UNet (and text encoder) targets in [lora], image size,
augmentation and the diffusion loss's options in [train], sample images in [validation]. No torch."""

from typing import Literal

from pydantic import Field, model_validator

from engine.errors import LoratuiError
from engine.spec import DataSection, EvalSection, LoraSection, Spec, TrainSection, _Section, column_role
from engine.tasks import registry
from engine.tasks.text_to_image import TASK

FAMILIES = TASK.family_names()
# The built-ins train in seconds on a CPU: small images, and enough steps to see the loss fall.
_TINY = {name: b.family for name, b in TASK.builtins.items() if b.kind == "model"}
LARGE = 1024  # a family trained at this size or more checkpoints activations by default


class Data(DataSection):
    IMAGE_FIELDS = ("image_column",)

    image_column: str = Field("image", min_length=1, description="Column holding the images (or image paths)",
                              json_schema_extra=column_role("image", ("image", "string"),
                                                            ("image", "img", "images", "picture", "file_name")))
    caption_column: str = Field("text", min_length=1, description="Column holding the captions (a string or a list)",
                                json_schema_extra=column_role("caption", ("string", "list of string"),
                                                              ("text", "caption", "prompt", "description",
                                                               "captions")))
    bad_images: Literal["refuse", "skip"] = Field(
        "refuse", description="An image that does not decode: refuse the run (naming the file) or skip that row"
    )


class Lora(LoraSection):
    init: Literal["default", "gaussian", "pissa", "olora", "loftq"] = Field(
        "gaussian", description="Initialisation of the A matrix: gaussian (as diffusers), default (Kaiming), or "
        "pissa, olora, loftq (see peft)"
    )
    target_modules: list[str] | Literal["all-linear"] = Field(
        ["to_k", "to_q", "to_v", "to_out.0"], min_length=1, description="UNet modules that get a LoRA"
    )
    train_text_encoder: bool = Field(False, description="Also train a LoRA on the text encoder(s), both for SDXL")
    text_encoder_target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "out_proj"], min_length=1, description="Text encoder modules that get a LoRA"
    )

    @model_validator(mode="after")
    def _diffusers_file(self):
        # The adapter is a diffusers LoRA file: LoRA layers only, applied to the base as it ships.
        problem = _diffusers_problem(self.bias, self.modules_to_save, self.init)
        if problem:
            raise ValueError(problem)
        return self


def _diffusers_problem(bias: str, modules_to_save: list[str], init: str) -> str | None:
    if bias != "none":
        return f"bias: {bias!r} is not allowed for text-to-image (allowed: none): a diffusers LoRA file holds no biases"
    if modules_to_save:
        return "modules_to_save: not allowed for text-to-image: a diffusers LoRA file holds LoRA layers only"
    if init not in ("default", "gaussian"):
        return (f"init: {init!r} is not allowed for text-to-image (allowed: gaussian, default): it changes the base "
                "weights, which stock loaders of a diffusers LoRA file do not")
    return None


class Train(TrainSection):
    resolution: int = Field(512, gt=0, description="Images are resized and cropped to this square size, in pixels")
    center_crop: bool = Field(False, description="Crop the centre of each image; otherwise a random crop")
    random_flip: bool = Field(False, description="Flip images horizontally at random")
    interpolation: Literal["bilinear", "bicubic", "lanczos", "nearest"] = Field(
        "bilinear", description="Resampling filter used to resize images"
    )
    snr_gamma: float = Field(0.0, ge=0, description="Min-SNR loss weighting gamma (5.0 is typical); 0 turns it off")
    noise_offset: float = Field(0.0, ge=0, description="Scale of the per-channel noise offset; 0 turns it off")
    prediction_type: Literal["", "epsilon", "v_prediction"] = Field(
        "", description="Training target; empty uses the model scheduler's own prediction type"
    )
    cache: bool = Field(
        True,
        description="Cache VAE latents (when crops are fixed) and text embeddings (when the text encoder is frozen)",
    )


class Validation(_Section):
    prompt: str = Field("", description="Prompt sampled during training; empty turns sampling off")
    negative_prompt: str = Field("", description="Negative prompt for the samples")
    every_steps: int = Field(0, ge=0, description="Sample every N steps; 0 never (a last sample is made at the end)")
    every_epochs: int = Field(0, ge=0, description="Sample every N epochs; 0 never")
    num_images: int = Field(1, gt=0, description="Images per sampling")
    num_inference_steps: int = Field(25, gt=0, description="Denoising steps per sample")
    guidance_scale: float = Field(7.5, ge=0, description="Classifier-free guidance scale for samples")


class Eval(EvalSection):
    """The validation loss on held-out images, at fixed noise and timesteps (evaluation.py): eval_loss."""

    @model_validator(mode="after")
    def _its_metric(self):
        if self.keep_best and self.keep_best != "eval_loss":
            raise ValueError(f"keep_best: {self.keep_best!r} is not a text-to-image metric (allowed: eval_loss)")
        return self


class TextToImageSpec(Spec):
    task: Literal["text-to-image"] = Field("text-to-image", description="What to train")
    data: Data = Field(description="The training data: images and their captions")
    lora: Lora = Field(default_factory=Lora, description="The adapter")
    train: Train = Field(description="Optimisation, image size and augmentation, checkpoints")
    validation: Validation = Field(default_factory=Validation, description="Samples during training")
    eval: Eval = Field(default_factory=Eval, description="Evaluation during training: the validation loss on "
                       "held-out images, at noise and timesteps fixed by the seed")


SPEC = TextToImageSpec


def template(family: str | None, model: str, data: str) -> dict:
    """Values suited to the family (one of FAMILIES); with no family and no model, builtin:tiny-sd on
    builtin:shapes, which trains offline in seconds."""
    if family is not None and family not in FAMILIES:
        raise LoratuiError(f"unknown model family '{family}' for text-to-image", hint="families: " + ", ".join(FAMILIES))
    if not model:
        model = registry.family(family).base_model if family else "builtin:tiny-sd"
    tiny = model.removeprefix("builtin:") if model.startswith("builtin:") else ""
    found = registry.family(family or _TINY.get(tiny, FAMILIES[0]))
    small = bool(tiny)
    train = {
        "resolution": 64 if small else found.resolution,
        "center_crop": True,
        "random_flip": True,
        "batch_size": 4 if small else 1,
        "gradient_accumulation_steps": 1 if small else 4,
        "max_steps": 200 if small else 2000,
        "learning_rate": 1e-4,
        "lr_scheduler": "cosine",
        "checkpointing_steps": 50 if small else 500,
        "gradient_checkpointing": found.resolution >= LARGE and not small,
    }
    return {
        "name": "shapes-demo" if small else f"{found.name}-lora",
        "task": TASK.name,
        "model": {"pretrained": model},
        "data": {"source": data or ("builtin:shapes" if small else "path/to/imagefolder")},
        "lora": {"train_text_encoder": False},
        "train": train,
        "validation": {"prompt": "a red circle" if small else "", "every_steps": 100 if small else 500},
    }
