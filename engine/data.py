"""Dataset sources -> rows, and rows -> training examples, with no torch (preflight runs in the supervisor).

A source is a Hub dataset id, a local folder (imagefolder or data files), a csv/jsonl/json/parquet file, or
builtin:NAME. Every random choice for a row (crop, flip, caption) comes from a generator seeded by
(seed, epoch, row), so a run resumed mid-epoch sees exactly the examples an uninterrupted run would.
"""

import io
import random
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine import builtin, reach
from engine.errors import HubUnreachable, LoratuiError, first_line, is_unreachable

FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_RESAMPLE = {"bilinear": 2, "bicubic": 3, "lanczos": 1, "nearest": 0}  # PIL.Image.Resampling values


def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def load_rows(data, seed: int):
    """The split named by the spec's [data] section, columns checked, cut to max_samples; a datasets.Dataset."""
    datasets = _quiet_datasets()
    source = builtin.resolve(data.source) if builtin.is_builtin(data.source) else data.source
    path = Path(source).expanduser()
    try:
        if path.is_file():
            builder = FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise LoratuiError(f"data.source: {path.name} is not a csv, jsonl, json or parquet file",
                                   hint="point data.source at a data file, an image folder or a Hub dataset id")
            rows = datasets.load_dataset(builder, data_files={"train": str(path)}, split=data.split)
            for column in data.image_columns():
                rows = _paths_to_images(rows, column, path.parent)
        elif path.is_dir():
            rows = datasets.load_dataset(str(path), name=data.config or None, split=data.split)
        elif source.startswith((".", "/", "~")):
            raise LoratuiError(f"data.source: {source} does not exist", hint="check the path")
        else:
            rows = _load_hub(datasets, data)
    except LoratuiError:
        raise
    except Exception as exc:  # datasets raises many types; the message is what the user needs
        raise (HubUnreachable if is_unreachable(exc) else LoratuiError)(
            f"data.source: cannot load '{data.source}' (split '{data.split}'): {first_line(exc)}",
            hint="check the dataset id, config and split, your network, and HF_TOKEN for private datasets",
        ) from None
    columns = data.columns()
    missing = [f"data.{field}: no column '{name}' in {data.source} (columns: {', '.join(rows.column_names)})"
               for field, name in columns.items() if name not in rows.column_names]
    if missing:
        raise LoratuiError("\n".join(missing), hint=f"set {' and '.join('data.' + f for f in columns)} to existing columns")
    if data.max_samples and data.max_samples < len(rows):
        rows = rows.shuffle(seed=seed).select(range(data.max_samples))
    return rows


def _load_hub(datasets, data):
    """A Hub dataset, downloaded or from the HF cache; from the cache only when the Hub is out of reach."""
    hub = reach.hub()
    if hub.reachable:
        return datasets.load_dataset(data.source, name=data.config or None, split=data.split)
    try:
        with _cache_only(datasets):
            return datasets.load_dataset(data.source, name=data.config or None, split=data.split)
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        raise HubUnreachable(f"data.source: cannot load '{data.source}' (split '{data.split}'): it is not in the "
                             f"HF cache and {hub.why_not}", hint=hub.hint) from None


@contextmanager
def _cache_only(datasets):
    """HF_HUB_OFFLINE for one call: datasets has no per-call switch, and reads its cache only in offline mode."""
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _paths_to_images(rows, column: str, base: Path):
    """A csv/jsonl names images by path, relative to the file: make them absolute and decodable."""
    datasets = _quiet_datasets()
    if column not in rows.column_names or not isinstance(rows.features[column], datasets.Value):
        return rows
    rows = rows.map(lambda row: {column: str((base / row[column]).expanduser())})
    return rows.cast_column(column, datasets.Image())


def bad_images(rows, column: str) -> list[tuple[int, str, str]]:
    """(row, file, reason) for every image that does not decode fully."""
    datasets = _quiet_datasets()
    raw = rows.cast_column(column, datasets.Image(decode=False))

    def check(index: int):
        from PIL import Image

        value = raw[index][column]
        name = (value or {}).get("path") or f"row {index}"
        try:
            source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
            with Image.open(source) as image:
                image.load()
        except Exception as exc:
            return index, str(name), first_line(exc)
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [found for found in pool.map(check, range(len(raw))) if found]


GROUP_BATCHES = 50  # batches per length group (transformers' megabatch)


class EpochOrder:
    """Sampler yielding (epoch, row) keys in a seeded order per epoch, from `skip` on for a resumed epoch.

    Given row lengths and the rows a step takes (`batch`), the shuffled order is sorted by length within each
    group of GROUP_BATCHES batches (transformers' group_by_length), cut into batches, and the batches of a group
    shuffled: a batch holds similar lengths and pads little, while which rows share a batch, and whether long
    or short batches come first, still change every epoch. Batches never straddle a resumed epoch's `skip`."""

    def __init__(self, num_rows: int, seed: int, lengths: list[int] | None = None, batch: int = 1) -> None:
        self.num_rows = num_rows
        self.seed = seed
        self.lengths = lengths
        self.batch = batch
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.skip = 0

    def order(self, epoch: int) -> list[int]:
        rows = list(range(self.num_rows))
        rng = random.Random(f"order:{self.seed}:{epoch}")
        rng.shuffle(rows)
        if self.lengths is None:
            return rows
        group, grouped = GROUP_BATCHES * self.batch, []
        for start in range(0, len(rows), group):
            by_length = sorted(rows[start:start + group], key=lambda r: -self.lengths[r])
            batches = [by_length[i:i + self.batch] for i in range(0, len(by_length), self.batch)]
            rng.shuffle(batches)
            grouped += [row for batch in batches for row in batch]
        return grouped

    def __iter__(self):
        for row in self.order(self.epoch)[self.skip:]:
            yield self.epoch, row

    def __len__(self) -> int:
        return self.num_rows - self.skip


def row_rng(seed: int, epoch: int, row: int, purpose: str) -> random.Random:
    """One generator per decision (caption, flip, crop), so a decision skipped (a cached latent) shifts no other."""
    return random.Random(f"{purpose}:{seed}:{epoch}:{row}")


def pick_caption(value, rng: random.Random, column: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return rng.choice(value)
    raise LoratuiError(f"data.caption_column: '{column}' holds {type(value).__name__}, not text",
                       hint="captions must be strings or lists of strings")


def augment(image, resolution: int, center_crop: bool, flipped: bool, interpolation: str, crop_rng: random.Random):
    """Resize the short side to `resolution`, flip, crop: (CHW float32 in [-1, 1], original (h, w), crop (top, left)).

    The steps of the diffusers examples' torchvision transforms, with PIL and numpy."""
    return flip_and_crop(*resized_rgb(image, resolution, interpolation), resolution, center_crop, flipped, crop_rng)


def resized_rgb(image, resolution: int, interpolation: str) -> tuple:
    """(the image in RGB with its short side resized to `resolution`, its original (h, w))."""
    image = image.convert("RGB")
    return resize_short_side(image, resolution, interpolation), (image.height, image.width)


class ResizedImages:
    """A column's images decoded, made RGB and resized once each, kept up to a memory budget: later epochs skip
    the decoding and resizing (of a large JPEG, more work than a small model's step), with the same pixels."""

    def __init__(self, images, column: str, resolution: int, interpolation: str, budget_bytes: int) -> None:
        self.images, self.column = images, column
        self.resolution, self.interpolation = resolution, interpolation
        self.budget = budget_bytes
        self.kept: dict[int, tuple] = {}

    def get(self, row: int) -> tuple:
        """(the resized RGB image, its original (h, w))."""
        if row in self.kept:
            return self.kept[row]
        entry = resized_rgb(self.images[row][self.column], self.resolution, self.interpolation)
        size = entry[0].width * entry[0].height * 4  # PIL keeps RGB in four bytes a pixel
        if size <= self.budget:
            self.budget -= size
            self.kept[row] = entry
        return entry


def flip_and_crop(image, original: tuple[int, int], resolution: int, center_crop: bool, flipped: bool,
                  crop_rng: random.Random):
    """The rest of `augment`, from the resized image on."""
    if flipped:
        image = image.transpose(0)  # PIL.Image.Transpose.FLIP_LEFT_RIGHT
    top, left = crop_origin(image.height, image.width, resolution, center_crop, crop_rng)
    image = image.crop((left, top, left + resolution, top + resolution))
    pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return np.ascontiguousarray(pixels), original, (top, left)


def resize_short_side(image, resolution: int, interpolation: str):
    short, long = sorted((image.width, image.height))
    size = (resolution, int(resolution * long / short))
    width, height = size if image.width <= image.height else size[::-1]
    if (width, height) == image.size:
        return image
    return image.resize((width, height), resample=_RESAMPLE[interpolation])


def crop_origin(height: int, width: int, resolution: int, center: bool, rng: random.Random) -> tuple[int, int]:
    if center:
        return int(round((height - resolution) / 2.0)), int(round((width - resolution) / 2.0))
    return rng.randint(0, height - resolution), rng.randint(0, width - resolution)

