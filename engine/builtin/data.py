"""The built-in datasets: `shapes` and `shapes-night` (captioned images) and `shapes-masks` (images with class
masks), in imagefolder layout, and `tiny-text` (JSON lines)."""

import csv
import json
import random
from pathlib import Path

from engine.builtin.words import COLOURS, SHAPES, caption, sentences, shape_items

SEED = 7
SIZE = 64
BACKGROUND = (245, 245, 240)
NIGHT = (22, 26, 58)
MASK_SEED = 8
MASK_COPIES = {"train": 10, "test": 2}  # times each (colour, shape) pair appears in the split


def mask_labels() -> list[str]:
    """Class names by mask value."""
    return ["background", *SHAPES]


def draw(rng: random.Random, colour: str, shape: str, background=BACKGROUND):
    """The image of one shape and its mask: the same pixels, filled with the colour and with the class id."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), background)
    mask = Image.new("L", (SIZE, SIZE), 0)
    half = rng.randint(8, 20)
    cx, cy = rng.randint(half, SIZE - half), rng.randint(half, SIZE - half)
    box = (cx - half, cy - half, cx + half, cy + half)
    for canvas, fill in ((image, COLOURS[colour]), (mask, mask_labels().index(shape))):
        draw = ImageDraw.Draw(canvas)
        if shape == "circle":
            draw.ellipse(box, fill=fill)
        elif shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    return image, mask


def build_shapes(dest: Path, background=BACKGROUND, suffix: str = "") -> None:
    rng = random.Random(SEED)
    train = dest / "train"
    train.mkdir(parents=True)
    rows = []
    for i, (colour, shape) in enumerate(shape_items()):
        name = f"{i:03d}_{colour}_{shape}.png"
        # A plain PNG save stores no time or text chunks, so the bytes depend on the pixels alone.
        draw(rng, colour, shape, background)[0].save(train / name, format="PNG")
        rows.append((name, caption(colour, shape) + suffix))
    _write_metadata(train, ("file_name", "text"), rows)


def build_shapes_night(dest: Path) -> None:
    """The shapes at the same places on a night-blue background, captioned "... at night": what the
    shapes-demo LoRA teaches builtin:tiny-sd-shapes, which has only seen light backgrounds."""
    build_shapes(dest, NIGHT, " at night")


def build_shapes_masks(dest: Path) -> None:
    """Per split, images/ and masks/ (mode L, pixel = class id) named in metadata.csv; id2label.json names the
    classes. The `*_file_name` columns make imagefolder load both as images, in columns image and mask."""
    rng = random.Random(MASK_SEED)
    pairs = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    for split, copies in MASK_COPIES.items():
        for sub in ("images", "masks"):
            (dest / split / sub).mkdir(parents=True)
        rows = []
        for i, (colour, shape) in enumerate(pairs * copies):
            name = f"{i:03d}_{colour}_{shape}.png"
            image, mask = draw(rng, colour, shape)
            image.save(dest / split / "images" / name, format="PNG")
            mask.save(dest / split / "masks" / name, format="PNG")
            rows.append((f"images/{name}", f"masks/{name}"))
        _write_metadata(dest / split, ("image_file_name", "mask_file_name"), rows)
    (dest / "id2label.json").write_text(json.dumps(dict(enumerate(mask_labels())), indent=2) + "\n")


def _write_metadata(folder: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def build_text(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "train.jsonl", "w", encoding="utf-8") as f:
        for sentence in sentences():
            f.write(json.dumps({"text": sentence}) + "\n")
