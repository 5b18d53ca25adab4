"""The built-ins for sequence classification and semantic segmentation: reproducible, and loadable offline by
the stock Auto* classes and datasets.load_dataset, as engine/data.py loads a built-in folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.builtin as builtin
from engine import model_kind
from engine.builtin.data import BACKGROUND
from loratui.cli import main as loratui_main

NAMES = ("tiny-bert", "tiny-reviews", "tiny-segformer", "shapes-masks")


@pytest.fixture(scope="module")
def built(builtin_home) -> dict[str, Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(builtin_home))
        return {name: builtin.path(name) for name in NAMES}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(datasets, folder: Path, tmp_path: Path):
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "datasets"))


def test_registered_with_their_task(capsys):
    entries = {entry["name"]: entry for entry in builtin.describe()}
    assert {name: (entries[name]["kind"], entries[name]["family"], entries[name]["task"]) for name in NAMES} == {
        "tiny-bert": ("model", "text", "sequence-classification"),
        "tiny-reviews": ("dataset", None, "sequence-classification"),
        "tiny-segformer": ("model", "vision", "semantic-segmentation"),
        "shapes-masks": ("dataset", None, "semantic-segmentation"),
    }
    assert loratui_main(["builtin", "ls"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {f"builtin:{name}" for name in NAMES} <= set(listed)


def test_byte_identical_in_another_process(built, tmp_path):
    # A different hash seed: set and dict orders change, as they would for a user's first build.
    code = f"import engine.builtin as b; [b.path(n) for n in {NAMES!r}]"
    env = os.environ | {"LORATUI_HOME": str(tmp_path), "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    for name in NAMES:
        first, second = _files(built[name]), _files(tmp_path / "builtin" / name)
        assert first.keys() == second.keys(), name
        assert [f for f in first if first[f] != second[f]] == [], name


def test_tiny_bert_classifies_reviews(built):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = built["tiny-bert"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["model_type"] == "bert"
    assert model_kind.from_configs(config=config).family == "text"  # as registered
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = [json.loads(line)["text"] for line in (built["tiny-reviews"] / "train.jsonl").read_text().splitlines()]
    ids = tokenizer(texts).input_ids
    assert tokenizer.unk_token_id not in {i for row in ids for i in row}
    assert max(map(len, ids)) < tokenizer.model_max_length
    assert tokenizer.tokenize("The zebra was great.") == ["the", "z", "##e", "##b", "##r", "##a", "was", "great", "."]
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert not info["unexpected_keys"]
    assert {"query", "value"} <= {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    batch = tokenizer(texts[:4], padding=True, return_tensors="pt")
    loss = model(**batch, labels=torch.tensor([0, 1, 0, 1])).loss
    loss.backward()
    assert torch.isfinite(loss) and model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_tiny_reviews_splits(built, tmp_path):
    import datasets

    data = _load(datasets, built["tiny-reviews"], tmp_path)
    assert {split: rows.num_rows for split, rows in data.items()} == {"train": 320, "test": 80}
    for rows in data.values():
        assert rows.column_names == ["text", "label"]
        assert sorted(set(rows["label"])) == ["negative", "positive"]
        assert list(rows["label"]).count("positive") == rows.num_rows // 2
    assert not set(data["test"]["text"]) & set(data["train"]["text"])


def test_tiny_segformer_segments_shapes(built):
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    folder, masks = built["tiny-segformer"], built["shapes-masks"]
    id2label = json.loads((masks / "id2label.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == id2label and config["architectures"] == ["SegformerForSemanticSegmentation"]
    processor = AutoImageProcessor.from_pretrained(folder)
    model, info = AutoModelForSemanticSegmentation.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values())
    assert {"q_proj", "v_proj"} <= {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    name = "000_red_circle.png"
    image, mask = Image.open(masks / "train" / "images" / name), Image.open(masks / "train" / "masks" / name)
    batch = processor(images=[image], segmentation_maps=[mask], return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 64, 64)
    assert np.array_equal(batch["labels"][0].numpy(), np.array(mask))  # class ids kept, background included
    out = model(**batch)
    assert out.logits.shape == (1, len(id2label), 16, 16) and torch.isfinite(out.loss)


def test_shapes_masks_label_every_shape_pixel(built, tmp_path):
    import datasets
    from PIL import Image

    folder = built["shapes-masks"]
    labels = list(json.loads((folder / "id2label.json").read_text()).values())
    assert labels == ["background", "circle", "square", "triangle"]
    data = _load(datasets, folder, tmp_path)
    assert {split: rows.num_rows for split, rows in data.items()} == {"train": 240, "test": 48}
    row = data["test"][0]
    assert list(row) == ["image", "mask"] and row["image"].mode == "RGB" and row["mask"].mode == "L"
    for split in ("train", "test"):
        for path in sorted((folder / split / "images").iterdir())[:24]:
            image = np.array(Image.open(path))
            mask = np.array(Image.open(folder / split / "masks" / path.name))
            shape = path.stem.rsplit("_", 1)[1]
            assert set(np.unique(mask)) == {0, labels.index(shape)}, path.name
            assert np.array_equal(mask > 0, (image != BACKGROUND).any(axis=-1)), path.name


def test_each_built_model_is_what_its_registry_entry_says(built):
    for entry in builtin.describe():
        if entry["kind"] == "model" and entry["name"] in built:
            kind = model_kind.from_folder(built[entry["name"]])
            assert (kind.family, kind.task) == (entry["family"], entry["task"]), entry["name"]
