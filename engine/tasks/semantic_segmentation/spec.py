"""The semantic-segmentation spec: images and masks of class ids in [data], attention targets in [lora] (the head
is found from the model and saved whole), aligned augmentation in [train]. No torch."""

from typing import Literal

from pydantic import Field, model_validator

from engine.errors import LoratuiError
from engine.spec import DataSection, LoraSection, Spec, TrainSection, column_role

FAMILIES = ("vision",)  # what engine.adapters and Browse call a segmentation model's family
# The reference's base: SegFormer B0 (an ImageNet backbone; the decode head is new) at its 512 px.
_BASE_MODEL = "nvidia/mit-b0"


class Data(DataSection):
    IMAGE_FIELDS = ("image_column", "mask_column")

    image_column: str = Field("image", min_length=1, description="Column holding the images (or image paths)",
                              json_schema_extra=column_role("image", ("image", "string"), ("image", "pixel_values",
                                                                                           "img")))
    mask_column: str = Field(
        "mask", min_length=1,
        description="Column holding the masks: single-channel images (or paths) whose pixels are class ids",
        json_schema_extra=column_role("mask", ("image", "string"), ("mask", "label", "annotation",
                                                                    "segmentation")),
    )
    labels: list[str] = Field(
        [], description="Class names in id order; empty: from an id2label.json beside the data, else the model's "
        "own id2label (a segmentation model's)"
    )
    reduce_labels: bool = Field(
        False, description="Mask id 0 is 'other' and ignored, ids 1..n are the labels (as ADE20K; the image "
        "processor's do_reduce_labels)"
    )
    ignore_index: int = Field(255, ge=0, description="Mask id that marks pixels left out of the loss and metrics")

    @model_validator(mode="after")
    def _distinct_labels(self):
        # Messages start with the field: engine.spec puts the section before them.
        empty = [i for i, name in enumerate(self.labels) if not name.strip()]
        if empty:
            raise ValueError(f"labels: the name of class {empty[0]} is empty (allowed: a name per class id)")
        twice = sorted({name for name in self.labels if self.labels.count(name) > 1})
        if twice:
            raise ValueError(f"labels: {', '.join(map(repr, twice))} named more than once (allowed: distinct names)")
        return self


class Lora(LoraSection):
    # pissa, olora and loftq rewrite the base weights: the adapter would then not apply to the base as it ships.
    init: Literal["default", "gaussian"] = Field(
        "default", description="Initialisation: default (Kaiming A, zero B) or gaussian; pissa, olora and loftq "
        "are not offered: they change the base weights, which stock loading of the adapter does not"
    )
    target_modules: list[str] | Literal["all-linear"] = Field(
        ["q_proj", "v_proj"], min_length=1,
        description='Modules that get a LoRA (SegFormer: q_proj, k_proj, v_proj, o_proj, fc1, fc2) or "all-linear"; '
        "the decode head trains in full and is saved with the adapter",
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        "lora_only", description="Biases that train too: none, all of them, or those of the LoRA-wrapped layers"
    )


class Train(TrainSection):
    random_flip: bool = Field(False, description="Flip image and mask together, horizontally, at random")
    crop_scale: float = Field(
        1.0, gt=0, le=1, description="Crop image and mask together to a random box, each side a random share "
        "between this and 1 of the original (then resized by the image processor); 1 turns cropping off"
    )


class SemanticSegmentationSpec(Spec):
    task: Literal["semantic-segmentation"] = Field("semantic-segmentation", description="What to train")
    data: Data = Field(description="The training data: images and their masks of class ids")
    lora: Lora = Field(default_factory=Lora, description="The adapter (and the decode head, saved whole)")
    train: Train = Field(description="Optimisation, augmentation, checkpoints")


SPEC = SemanticSegmentationSpec


def template(family: str | None, model: str, data: str) -> dict:
    """Values for a SegFormer (family vision); with no family and no model, builtin:tiny-segformer on builtin:shapes-masks,
    which trains offline in under a minute and is evaluated on the test split."""
    if family is not None and family not in FAMILIES:
        raise LoratuiError(f"unknown model family '{family}' for semantic-segmentation",
                           hint="families: " + ", ".join(FAMILIES))
    model = model or (_BASE_MODEL if family else "builtin:tiny-segformer")
    small = model.startswith("builtin:")
    # The small values are those measured on the built-ins; the others are the reference's (r=32, lr 5e-4).
    return {
        "name": "shapes-masks-demo" if small else "segformer-lora",
        "task": "semantic-segmentation",
        "model": {"pretrained": model},
        "data": {"source": data or ("builtin:shapes-masks" if small else "path/to/imagefolder")},
        "lora": {"rank": 8, "alpha": 16.0} if small else {"rank": 32, "alpha": 32.0, "dropout": 0.1},
        "train": {
            "batch_size": 16 if small else 2,
            "max_steps": 300 if small else 2000,
            "learning_rate": 3e-3 if small else 5e-4,
            "random_flip": True,
            "checkpointing_steps": 100 if small else 500,
            "log_every_steps": 10,
        },
        "eval": {"split": "test", "every_steps": 100} if small else {"split_ratio": 0.1, "every_steps": 500},
    }
