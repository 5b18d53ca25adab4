"""Semantic-segmentation LoRA as peft's SegFormer example does it: the model's own image processor,
AutoModelForSemanticSegmentation with the data's labels (a new head where they differ from the model's), LoRA on
the attention, the decode head trained in full (modules_to_save); the model's own loss; mean IoU for evaluation.
The adapter is a PEFT folder that PeftModel.from_pretrained loads onto the base as it ships."""

import json
import re

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

from engine import data
from engine.errors import LoratuiError
from engine.memory import enable_activation_checkpointing
from engine.tasks.peft_model import PeftModelTask, head_modules
from engine.tasks.semantic_segmentation.source import class_names, model_files, pretrained_ref

FLIP_LEFT_RIGHT = 0  # PIL.Image.Transpose.FLIP_LEFT_RIGHT


class Trainer(PeftModelTask):
    varying_lengths = False

    def __init__(self, spec, accelerator, rows, log) -> None:
        self.spec = spec
        info = model_files(spec.model)
        self.family = info.family
        self.labels, origin = class_names(spec.data, info.config)
        more = " ..." if len(self.labels) > 8 else ""
        log("info", f"{len(self.labels)} classes from {origin}: {', '.join(self.labels[:8])}{more}")
        ref, kw = pretrained_ref(spec.model.pretrained), {"revision": spec.model.revision or None}
        self.processor = AutoImageProcessor.from_pretrained(ref, **kw)
        if hasattr(self.processor, "do_reduce_labels"):
            self.processor.do_reduce_labels = False  # collate() reduces, to the spec's ignore_index
        model = self._load_model(ref, kw)
        self.heads = head_modules(model)
        self.attach(model, spec, accelerator, self.heads, None, "q_proj, v_proj for a SegFormer")
        self.dataset = Examples(spec, rows, augment=True)

    def _load_model(self, ref: str, kw: dict):
        spec = self.spec
        model = AutoModelForSemanticSegmentation.from_pretrained(
            ref, **kw, variant=spec.model.variant or None, id2label=dict(enumerate(self.labels)),
            label2id={name: i for i, name in enumerate(self.labels)}, ignore_mismatched_sizes=True,
            semantic_loss_ignore_index=spec.data.ignore_index)
        if spec.train.gradient_checkpointing:
            if not model.supports_gradient_checkpointing:
                raise LoratuiError(f"train.gradient_checkpointing: {type(model).__name__} does not support it",
                                   hint="set train.gradient_checkpointing = false")
            enable_activation_checkpointing(model)
        return model

    def collate(self, examples: list[dict]) -> dict:
        batch = self.processor(images=[e["image"] for e in examples], segmentation_maps=[e["mask"] for e in examples],
                               return_tensors="pt")
        labels = batch["labels"].long()
        if self.spec.data.reduce_labels:  # as the processor's do_reduce_labels, 255 (and 0) then ignore_index
            ignored = (labels == 0) | (labels == 255)
            labels = (labels - 1).masked_fill(ignored, self.spec.data.ignore_index)
        return {"pixel_values": batch["pixel_values"], "labels": labels}

    def loss(self, batch: dict, generator) -> torch.Tensor:
        # The model's own loss: logits upsampled to the labels, cross-entropy without ignore_index pixels.
        device = self.accelerator.device
        return self.prepared(pixel_values=batch["pixel_values"].to(device), labels=batch["labels"].to(device)).loss

    def eval_examples(self, rows) -> "Examples":
        return Examples(self.spec, rows, augment=False)

    def eval_step(self, batch: dict) -> dict:
        device, model = self.accelerator.device, self._unwrapped()
        training = model.training
        model.eval()  # no dropout, BatchNorm's running statistics
        try:
            with torch.no_grad():
                logits = model(pixel_values=batch["pixel_values"].to(device)).logits
        finally:
            model.train(training)
        return eval_areas(logits, batch["labels"].to(device), self.spec.data.ignore_index)

    def metrics(self, outputs: dict) -> dict[str, float]:
        return segmentation_metrics(outputs, self.labels)

    # -- state -------------------------------------------------------------------------------------------
    def adapter_metadata(self) -> dict[str, str]:
        lora, section = self.spec.lora, self.spec.data
        targets = lora.target_modules if isinstance(lora.target_modules, str) else ",".join(lora.target_modules)
        return {"loratui.family": self.family, "loratui.target_modules": targets,
                "loratui.modules_to_save": ",".join(self.heads), "loratui.labels": json.dumps(self.labels),
                "loratui.reduce_labels": json.dumps(section.reduce_labels),
                "loratui.ignore_index": str(section.ignore_index)}


class Examples:
    """Rows -> {image, mask}. Keys are (epoch, row); with augmentation each random choice has its own
    (seed, epoch, row) generator, so a resumed run sees the crops and flips an uninterrupted one would."""

    def __init__(self, spec, rows, augment: bool) -> None:
        self.columns = (spec.data.image_column, spec.data.mask_column)
        self.rows = rows.select_columns(list(self.columns))
        self.train = spec.train if augment else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> dict:
        epoch, row = key
        item = self.rows[row]
        image, mask = item[self.columns[0]].convert("RGB"), item[self.columns[1]]
        if self.train is not None:
            image, mask = augment(image, mask, self.train, epoch, row)
        return {"image": image, "mask": np.asarray(mask, dtype=np.int32)}


def augment(image, mask, train, epoch: int, row: int) -> tuple:
    """The same random crop and flip for the image and its mask."""
    if train.crop_scale < 1:
        rng = data.row_rng(train.seed, epoch, row, "crop")
        share = rng.uniform(train.crop_scale, 1.0)
        width, height = max(1, round(image.width * share)), max(1, round(image.height * share))
        left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
        box = (left, top, left + width, top + height)
        image, mask = image.crop(box), mask.crop(box)
    if train.random_flip and data.row_rng(train.seed, epoch, row, "flip").random() < 0.5:
        image, mask = image.transpose(FLIP_LEFT_RIGHT), mask.transpose(FLIP_LEFT_RIGHT)
    return image, mask


def eval_areas(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> dict:
    """Per example: its loss, and per class the pixels predicted, labelled, and both (ignore_index pixels left
    out). Areas, not label maps, so a large eval set gathers in little memory; mean IoU from them is exact."""
    logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    valid = labels != ignore_index
    pixel_loss = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    loss = pixel_loss.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp(min=1)
    pred = logits.argmax(dim=1)
    batch, classes = logits.shape[:2]
    offset = torch.arange(batch, device=labels.device)[:, None, None] * classes

    def per_class(ids: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        return torch.bincount((ids + offset)[where], minlength=batch * classes).view(batch, classes)

    return {"loss": loss, "intersection": per_class(labels, valid & (pred == labels)),
            "predicted": per_class(pred, valid), "labelled": per_class(labels, valid)}


def segmentation_metrics(outputs: dict, labels: list[str]) -> dict[str, float]:
    """Mean IoU over the classes present in predictions or labels, per-class IoU (iou_<label>), pixel accuracy
    (as evaluate's mean_iou computes them) and the mean loss per example, over the whole eval set."""
    intersection, predicted, labelled = (outputs[k].sum(dim=0).double() for k in ("intersection", "predicted", "labelled"))
    union = predicted + labelled - intersection
    present = union > 0
    iou = intersection / union.clamp(min=1)
    result = {"eval_loss": float(outputs["loss"].float().mean()), "mean_iou": float(iou[present].mean()),
              "pixel_accuracy": float(intersection.sum() / labelled.sum().clamp(min=1))}
    for index, name in enumerate(labels):
        if present[index]:
            result[f"iou_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_') or index}"] = float(iou[index])
    return result
