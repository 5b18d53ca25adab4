"""The built-in datasets: `shapes` (captioned images, imagefolder layout) and `tiny-text` (JSON lines)."""

import csv
import json
import random
from pathlib import Path

from engine.builtin.words import COLOURS, caption, sentences, shape_items

SEED = 7
SIZE = 64
BACKGROUND = (245, 245, 240)


def _draw(rng: random.Random, colour: str, shape: str):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    half = rng.randint(8, 20)
    cx, cy = rng.randint(half, SIZE - half), rng.randint(half, SIZE - half)
    box = (cx - half, cy - half, cx + half, cy + half)
    draw = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    return image


def build_shapes(dest: Path) -> None:
    rng = random.Random(SEED)
    train = dest / "train"
    train.mkdir(parents=True)
    rows = []
    for i, (colour, shape) in enumerate(shape_items()):
        name = f"{i:03d}_{colour}_{shape}.png"
        # A plain PNG save stores no time or text chunks, so the bytes depend on the pixels alone.
        _draw(rng, colour, shape).save(train / name, format="PNG")
        rows.append((name, caption(colour, shape)))
    with open(train / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("file_name", "text"))
        writer.writerows(rows)


def build_text(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "train.jsonl", "w", encoding="utf-8") as f:
        for sentence in sentences():
            f.write(json.dumps({"text": sentence}) + "\n")
