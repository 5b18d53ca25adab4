"""A run's first and last image samples, side by side in half-block characters, for the end of `loratui run`
on a terminal: the step-0 sample is the base model's, so what the adapter learned is seen where it ran."""

from pathlib import Path

from rich.text import Text

HALF = "\u2580"  # upper half block: its colour is the upper pixel, the background the lower one
MAX_SIZE = 40  # pixels per side at most: 40 columns and 20 lines per image
GAP = "   "


def compared_samples(db, run_id: str, run_dir: str) -> Text | None:
    """Base (step 0) and last image samples of the run with labels, or None without both."""
    rows = list(db.query("SELECT step, prompt, path FROM samples WHERE run_id = ? AND text IS NULL "
                         "ORDER BY step, path", [run_id]))
    if not rows or rows[0]["step"] != 0 or rows[-1]["step"] == 0:
        return None
    base, trained = rows[0], next(row for row in rows if row["step"] == rows[-1]["step"])
    images = [_load(Path(run_dir) / base["path"]), _load(Path(run_dir) / trained["path"])]
    if None in images:
        return None
    labels = ["base model (step 0)", f"adapter (step {trained['step']})"]
    return side_by_side(images, labels, f"samples of {trained['prompt']!r}, same seed:")


def side_by_side(images, labels: list[str], title: str) -> Text:
    """The images in half blocks, each under its label, left to right."""
    width = max(image.width for image in images)
    text = Text(title + "\n")
    text.append(GAP.join(label[:width].ljust(width) for label in labels) + "\n", style="bold")
    height = max(image.height for image in images)
    for y in range(0, height, 2):
        for number, image in enumerate(images):
            if number:
                text.append(GAP)
            for x in range(width):
                top, bottom = _pixel(image, x, y), _pixel(image, x, y + 1)
                text.append(HALF, style=f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})")
        text.append("\n")
    return text


def _load(path: Path):
    from loratui.watch import load_image

    image = load_image(str(path))
    if image is None:
        return None
    image = image.convert("RGB")
    if max(image.size) > MAX_SIZE:
        image.thumbnail((MAX_SIZE, MAX_SIZE))
    return image


def _pixel(image, x: int, y: int) -> tuple[int, int, int]:
    if x >= image.width or y >= image.height:
        return (0, 0, 0)
    return image.getpixel((x, y))
