"""A mask for an image from a base model and a semantic-segmentation adapter, loaded as anyone would load them:
the model's image processor, AutoModelForSemanticSegmentation and peft's PeftModel.from_pretrained. For `loratui gen`."""

import json
from pathlib import Path

import numpy as np

from engine.adapters.names import WEIGHT_NAMES
from engine.adapters.safeload import read_header
from engine.tasks.semantic_segmentation.source import pretrained_ref


def load(base_ref: str, adapter_path: Path | str):
    """(the base with the adapter on it, a PeftModel; the model's image processor)."""
    from peft import PeftModel
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    folder = Path(adapter_path)
    folder = folder if folder.is_dir() else folder.parent
    ref = pretrained_ref(base_ref)
    labels = adapter_labels(folder)
    # The adapter's head was trained for its labels: the base gets a head of that size, which the adapter replaces.
    relabel = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)},
               "ignore_mismatched_sizes": True} if labels else {}
    processor = AutoImageProcessor.from_pretrained(ref)
    return PeftModel.from_pretrained(AutoModelForSemanticSegmentation.from_pretrained(ref, **relabel), folder), processor


def predict(base_ref: str, adapter_path: Path | str, image_path: Path | str) -> tuple[np.ndarray, object]:
    """(the class id of every pixel, at the image's size; the mask in colour, a PIL image)."""
    import torch
    from PIL import Image

    model, processor = load(base_ref, adapter_path)
    model.eval()
    with Image.open(image_path) as opened:
        image = opened.convert("RGB")
    with torch.no_grad():
        outputs = model(**processor(images=image, return_tensors="pt"))
    mask = processor.post_process_semantic_segmentation(outputs, target_sizes=[(image.height, image.width)])[0]
    mask = mask.cpu().numpy().astype(np.int32)
    return mask, colourise(mask)


def adapter_labels(folder: Path) -> list[str]:
    """The class names a loratui adapter's header records; empty for another's (the base's own labels then)."""
    weights = folder / WEIGHT_NAMES[0]
    raw = read_header(weights).metadata.get("loratui.labels") if weights.is_file() else None
    return json.loads(raw) if raw else []


def palette(count: int) -> np.ndarray:
    """(count, 3) uint8 colours, PASCAL VOC's: class 0 black, neighbours far apart."""
    colours = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colours[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colours


def colourise(mask: np.ndarray):
    from PIL import Image

    return Image.fromarray(palette(int(mask.max()) + 1)[mask])
