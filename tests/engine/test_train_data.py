"""Data sources (imagefolder, csv/jsonl/parquet files, Hub ids, built-ins) and the seeded example pipeline."""

import json
import random

import numpy as np
import pytest
from PIL import Image

from engine.data import EpochOrder, ResizedImages, augment, flip_and_crop, load_rows, pick_caption, row_rng
from engine.errors import LoratuiError
from engine.tasks.text_to_image.spec import Data as DataSection


def _images(folder, count=4, size=(40, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"img{i}.png"
        Image.new("RGB", size, (60 * i, 10, 200)).save(folder / name)
        names.append(name)
    return names


def test_csv_and_jsonl_name_images_relative_to_the_file(tmp_path):
    names = _images(tmp_path / "pics")
    (tmp_path / "data.csv").write_text("path,caption\n" + "".join(f"pics/{n},a {n}\n" for n in names))
    rows = load_rows(DataSection(source=str(tmp_path / "data.csv"), image_column="path", caption_column="caption"), 0)
    assert len(rows) == 4 and rows[1]["path"].size == (40, 24) and rows[1]["caption"] == "a img1.png"
    lines = [json.dumps({"file": f"pics/{n}", "captions": [f"one {n}", f"two {n}"]}) for n in names]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    rows = load_rows(DataSection(source=str(tmp_path / "data.jsonl"), image_column="file", caption_column="captions"), 0)
    assert isinstance(rows[0]["file"], Image.Image) and rows[0]["captions"] == ["one img0.png", "two img0.png"]


def test_parquet_and_imagefolder_sources(tmp_path):
    import datasets

    names = _images(tmp_path / "folder" / "train")
    (tmp_path / "folder" / "train" / "metadata.csv").write_text(
        "file_name,text\n" + "".join(f"{n},caption {n}\n" for n in names))
    rows = load_rows(DataSection(source=str(tmp_path / "folder")), 0)
    assert rows.column_names == ["image", "text"] and len(rows) == 4
    table = datasets.Dataset.from_dict({"image": [str(tmp_path / "folder" / "train" / n) for n in names],
                                        "text": names}).cast_column("image", datasets.Image())
    table.to_parquet(tmp_path / "data.parquet")
    rows = load_rows(DataSection(source=str(tmp_path / "data.parquet")), 0)
    assert rows[2]["image"].size == (40, 24) and rows[2]["text"] == "img2.png"


def test_missing_columns_are_named_with_the_columns_that_exist(tmp_path):
    _images(tmp_path / "folder" / "train")
    with pytest.raises(LoratuiError) as caught:
        load_rows(DataSection(source=str(tmp_path / "folder"), caption_column="caption"), 0)
    assert caught.value.message == (f"data.caption_column: no column 'caption' in {tmp_path / 'folder'} "
                                    "(columns: image)")


def test_an_unreachable_hub_dataset_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LoratuiError) as caught:
        load_rows(DataSection(source="someone/missing-dataset"), 0)
    assert caught.value.message.startswith("data.source: cannot load 'someone/missing-dataset' (split 'train'): ")
    assert "network" in caught.value.hint and "\n" not in caught.value.message


def test_max_samples_is_a_seeded_subset(tmp_path):
    names = _images(tmp_path / "folder" / "train", count=8)
    (tmp_path / "folder" / "train" / "metadata.csv").write_text("file_name,text\n" + "".join(f"{n},{n}\n" for n in names))
    data = DataSection(source=str(tmp_path / "folder"), max_samples=3)
    first, again, other = load_rows(data, 1), load_rows(data, 1), load_rows(data, 2)
    assert len(first) == 3 and first["text"] == again["text"] and first["text"] != other["text"]


def test_epoch_order_is_seeded_per_epoch_and_resumes_mid_epoch():
    order = EpochOrder(10, seed=3)
    epoch0 = list(order)
    order.set_epoch(1)
    epoch1 = list(order)
    assert sorted(row for _, row in epoch0) == list(range(10)) and epoch0 != epoch1
    assert {epoch for epoch, _ in epoch1} == {1}
    resumed = EpochOrder(10, seed=3)
    resumed.set_epoch(1)
    resumed.skip = 4
    assert list(resumed) == epoch1[4:] and len(resumed) == 6
    resumed.set_epoch(2)
    assert resumed.skip == 0 and len(list(resumed)) == 10


def test_epoch_order_by_length_batches_similar_lengths_seeded_and_resumable():
    lengths = [(i * 37) % 500 + 16 for i in range(400)]  # a spread of lengths in no order
    order = EpochOrder(400, seed=5, lengths=lengths, batch=8)
    epoch0 = [row for _, row in order]
    assert sorted(epoch0) == list(range(400))  # every example once
    assert epoch0 == [row for _, row in EpochOrder(400, seed=5, lengths=lengths, batch=8)]  # seeded
    assert epoch0 != [row for _, row in EpochOrder(400, seed=6, lengths=lengths, batch=8)]
    batches = [epoch0[i:i + 8] for i in range(0, 400, 8)]
    spans = [max(lengths[r] for r in b) - min(lengths[r] for r in b) for b in batches]
    assert max(spans) < 40  # a batch of 8 out of 400 lengths spread over 500 tokens: neighbours in length
    assert [lengths[b[0]] for b in batches] != sorted((lengths[b[0]] for b in batches), reverse=True)  # shuffled

    def padding(rows: list[int]) -> int:  # pad tokens of batches of 8 padded to their longest
        cut = [rows[i:i + 8] for i in range(0, len(rows), 8)]
        return sum(max(lengths[r] for r in b) * len(b) - sum(lengths[r] for r in b) for b in cut)

    assert padding(epoch0) * 10 < padding(EpochOrder(400, seed=5).order(0))
    order.set_epoch(1)
    epoch1 = list(order)
    assert sorted(row for _, row in epoch1) == list(range(400)) and [r for _, r in epoch1] != epoch0
    resumed = EpochOrder(400, seed=5, lengths=lengths, batch=8)
    resumed.set_epoch(1)
    resumed.skip = 24
    assert list(resumed) == epoch1[24:]


def test_augment_resizes_the_short_side_flips_and_crops():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white on the left
    pixels, original, crop = augment(image, 10, center_crop=True, flipped=False, interpolation="nearest",
                                     crop_rng=random.Random(0))
    assert pixels.shape == (3, 10, 10) and pixels.dtype == np.float32
    assert original == (20, 40) and crop == (0, 5)
    assert pixels.min() >= -1 and pixels.max() <= 1
    flipped, _, _ = augment(image, 10, center_crop=True, flipped=True, interpolation="nearest",
                            crop_rng=random.Random(0))
    assert np.array_equal(flipped, pixels[:, :, ::-1])
    _, _, random_crop = augment(image, 10, center_crop=False, flipped=False, interpolation="nearest",
                                crop_rng=random.Random(5))
    assert random_crop[0] == 0 and 0 <= random_crop[1] <= 10


class _CountingRows:
    """Rows whose image decodes are counted, as a datasets Image column decodes on every read."""

    def __init__(self, images):
        self.images, self.reads = images, 0

    def __getitem__(self, row):
        self.reads += 1
        return {"image": self.images[row].copy()}


def test_resized_images_decode_once_within_their_budget_and_give_the_same_pixels():
    photos = [Image.effect_noise((96, 64), 40 + 20 * i).convert("L") for i in range(3)]  # grey, not RGB
    rows = _CountingRows(photos)
    kept = ResizedImages(rows, "image", 16, "bilinear", budget_bytes=2 * 24 * 16 * 4)  # room for two
    for epoch in range(3):
        for row in range(3):
            image, original = kept.get(row)
            for flipped in (False, True):
                expected = augment(photos[row], 16, False, flipped, "bilinear", random.Random(epoch))
                got = flip_and_crop(image, original, 16, False, flipped, random.Random(epoch))
                assert np.array_equal(got[0], expected[0]) and got[1:] == expected[1:]
    assert rows.reads == 3 + 2  # rows 0 and 1 once each; row 2, past the budget, every epoch


def test_captions_pick_from_lists_with_their_own_generator():
    picks = {pick_caption(["a", "b", "c"], row_rng(1, epoch, 7, "caption"), "text") for epoch in range(20)}
    assert picks == {"a", "b", "c"}
    assert pick_caption("just one", random.Random(0), "text") == "just one"
    with pytest.raises(LoratuiError, match="data.caption_column: 'text' holds int, not text"):
        pick_caption(5, random.Random(0), "text")
