"""Sources without a network: built-ins, the HF cache, local folders and files of each dataset kind."""

import json
import shutil

import pytest
from PIL import Image

from loratui.browse import columns, dataset_info, local, trainable

TINY_SD_CONFIGS = "fixtures/repos/models/acme--tiny-sd"


def _imagefolder(root):
    train = root / "train"
    train.mkdir(parents=True)
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (8, 8), colour).save(train / f"{i}.png")
    (train / "metadata.csv").write_text("file_name,caption\n0.png,red\n1.png,green\n2.png,blue\n")
    return root


def _write(kind, folder):
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}, {"text": "fine", "label": 1}]
    if kind == "csv":
        path = folder / "d.csv"
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
    elif kind == "jsonl":
        path = folder / "d.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "json":
        path = folder / "d.json"
        path.write_text(json.dumps(rows))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path = folder / "d.txt"
        path.write_text("".join(r["text"] + "\n" for r in rows))
    return path


def test_builtins_are_listed_with_their_task(loratui_home):
    models = {e.ref: e for e in local.builtin_entries("model")}
    datasets = {e.ref for e in local.builtin_entries("dataset")}
    assert models["builtin:tiny-sd"].task == "text-to-image"
    assert {"builtin:shapes", "builtin:tiny-text"} <= datasets
    assert local.builtin_trainability("builtin:tiny-sd").trainable
    llama = local.builtin_trainability("builtin:tiny-llama")
    assert llama.trainable == ("causal-lm" in trainable.supported_tasks())


@pytest.mark.parametrize(
    ("kind", "fmt", "columns_"),
    [
        ("csv", "csv", {"text": "string", "label": "int64"}),
        ("jsonl", "json", {"text": "string", "label": "int64"}),
        ("json", "json", {"text": "string", "label": "int64"}),
        ("parquet", "parquet", {"text": "string", "label": "int64"}),
        ("text", "text", {"text": "string"}),
    ],
)
def test_local_data_files_of_each_kind(tmp_path, kind, fmt, columns_):
    path = _write(kind, tmp_path)
    assert local.data_format(path) == fmt
    entry = local.classify(path)
    assert entry.kind == "dataset" and entry.source == "local"
    detail = dataset_info.describe(str(path))
    assert detail.features == columns_
    assert detail.splits == {"train": 3}
    assert [r["text"] for r in detail.rows] == ["good", "bad", "fine"]
    assert detail.notes, (
        "the builder leaves features or splits empty for local files; the gap must be explained"
    )
    assert detail.size_bytes == path.stat().st_size


def test_local_imagefolder_fills_features_and_rows_by_a_quick_prepare(tmp_path):
    folder = _imagefolder(tmp_path / "pics")
    assert local.data_format(folder) == "imagefolder"
    detail = dataset_info.describe(str(folder))
    assert detail.features == {"image": "image", "caption": "string"}
    assert detail.splits == {"train": 3}
    assert detail.image_columns == ["image"]
    assert detail.rows[0]["image"].size == (8, 8) and detail.rows[1]["caption"] == "green"
    assert "features and row counts from a quick prepare of the local files" in detail.notes
    assert detail.configs == ["default"]


def test_builtin_dataset_described(loratui_home):
    detail = dataset_info.describe("builtin:shapes")
    assert detail.source == "builtin" and detail.splits == {"train": 48}
    assert columns.guess("text-to-image", detail.features) == {
        "image_column": "image",
        "caption_column": "text",
    }


def test_large_local_data_is_not_prepared_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_info, "PREPARE_LIMIT_BYTES", 10)
    detail = dataset_info.describe(str(_write("csv", tmp_path)))
    assert detail.splits == {"train": None}
    assert "row counts unknown until the data is prepared" in detail.notes
    assert detail.features == {"text": "string", "label": "int64"}
    assert "features inferred from the first 3 rows" in detail.notes


def test_a_folder_without_data_is_refused_clearly(tmp_path):
    from engine.errors import LoratuiError

    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(LoratuiError, match="holds no data"):
        dataset_info.describe(str(tmp_path))


def test_local_folders_are_found_among_children(tmp_path):
    shutil.copytree(__file__.rsplit("/", 1)[0] + "/" + TINY_SD_CONFIGS, tmp_path / "my-sd")
    _imagefolder(tmp_path / "pics")
    _write("csv", tmp_path)
    (tmp_path / "readme.md").write_text("not data")
    models = local.local_entries("model", [], scan=[tmp_path])
    datasets = local.local_entries("dataset", [], scan=[tmp_path])
    assert [e.title for e in models] == ["my-sd"]
    assert models[0].task == "text-to-image" and "sd1" in models[0].summary
    assert sorted(e.title for e in datasets) == ["d.csv", "pics"]
    remembered = local.local_entries("dataset", [tmp_path / "pics", tmp_path / "pics"], scan=[])
    assert [e.ref for e in remembered] == [str(tmp_path / "pics")]


def test_remembered_paths_round_trip(tmp_path, loratui_home):
    from loratui.db.library import open_db

    db = open_db()
    local.remember_path(db, tmp_path / "a")
    local.remember_path(db, tmp_path / "a")
    local.remember_path(db, tmp_path / "b")
    assert local.remembered_paths(open_db()) == [tmp_path / "a", tmp_path / "b"]


def test_hf_cache_models_and_datasets_are_listed(fake_hub, hf_cache):
    from huggingface_hub import hf_hub_download, snapshot_download

    snapshot_download("acme/tiny-sd", endpoint=fake_hub.endpoint)
    hf_hub_download("acme/reviews", "data/train.csv", repo_type="dataset", endpoint=fake_hub.endpoint)
    models = local.cache_entries("model")
    assert [e.ref for e in models] == ["acme/tiny-sd"] and models[0].source == "cache"
    assert [e.ref for e in local.cache_entries("dataset")] == ["acme/reviews"]
    snapshot = local.cached_snapshot("acme/tiny-sd")
    assert trainable.from_folder(snapshot).family == "sd1"


def test_no_hf_cache_is_an_empty_list(hf_cache):
    assert local.cache_entries("model") == []


def test_hub_dataset_through_load_dataset_builder(fake_hub):
    detail = dataset_info.describe("acme/reviews")
    assert detail.source == "hub" and detail.configs == ["default"]
    assert detail.features == {"text": "string", "label": "int64"}
    assert detail.splits == {"train": None}
    assert "row counts unknown until the data is prepared" in detail.notes
    assert len(detail.rows) == 4


def test_gated_hub_dataset_without_token_is_a_clear_error(fake_hub):
    from engine.errors import LoratuiError

    with pytest.raises(LoratuiError) as caught:
        dataset_info.describe("acme/gated-data")
    assert "gated" in caught.value.message and "HF_TOKEN" in caught.value.hint


def test_column_roles_are_guessed_and_checked():
    features = {"id": "int64", "caption": "string", "picture": "image"}
    mapping = columns.guess("text-to-image", features)
    assert mapping == {"image_column": "picture", "caption_column": "caption"}
    assert columns.check("text-to-image", features, mapping) == []
    bad = columns.check("text-to-image", features, {"image_column": "id", "caption_column": "nope"}, "d.csv")
    assert bad == [
        "data.image_column: column 'id' holds int64, not a image (allowed: image, string)",
        "data.caption_column: no column 'nope' in d.csv (columns: id, caption, picture)",
    ]
    assert columns.check("text-to-image", features, {"image_column": "picture", "caption_column": "picture"})[
        0
    ] == ("data.caption_column: 'picture' is already the image column")
    assert columns.check("text-to-image", None, {"image_column": "x", "caption_column": "y"}) == []
    assert columns.check("text-to-image", None, {"image_column": "x"}) == [
        "data.caption_column: choose the caption column"
    ]


def test_image_paths_in_a_csv_count_as_the_image_column():
    features = {"file_name": "string", "text": "string"}
    assert columns.guess("text-to-image", features) == {"image_column": "file_name", "caption_column": "text"}


def test_hub_dataset_configs_come_from_get_dataset_config_names(fake_hub):
    first = dataset_info.describe("acme/multi")
    assert first.configs == ["small", "large"] and first.config == "small"
    assert len(first.rows) == 2
    large = dataset_info.describe("acme/multi", "large")
    assert large.config == "large" and len(large.rows) == 5
