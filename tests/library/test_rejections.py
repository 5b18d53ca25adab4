"""Unsafe or broken files are refused with one line and a hint; the library and its folder stay as they were."""

import json
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from engine.home import adapters_dir, db_path
from loratui.cli import main


class _CreatesFile:
    """Unpickling this would create `marker`: proof that nothing was unpickled if it does not exist."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _state() -> tuple:
    """Everything a refusal must leave untouched: library rows and the adapters folder's contents."""
    from loratui.db.library import open_db

    db = open_db()
    rows = tuple(tuple(db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall())
                 for t in ("adapters", "lineage", "base_models"))
    db.conn.close()
    files = tuple(sorted(str(p.relative_to(adapters_dir())) for p in adapters_dir().rglob("*")))
    return rows, files


def _refused(capsys, *args) -> str:
    before = _state()
    code = main(["library", "import", *args])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 2 and err[0].startswith("error: ") and err[1].startswith("hint: "), err
    assert _state() == before
    return err[0]


@pytest.fixture
def seeded_library(lora_copy, capsys):
    """A library that already holds one copied adapter, so 'unchanged' means something."""
    assert main(["library", "import", str(lora_copy("kohya")), "--copy"]) == 0
    capsys.readouterr()
    assert db_path().exists()


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".ckpt", ".pth", ".safetensors"])
def test_pickles_are_never_unpickled(tmp_path, capsys, seeded_library, suffix):
    marker = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps({"state_dict": _CreatesFile(marker)}, protocol=4))
    message = _refused(capsys, str(evil), "--copy")
    assert "pickle" in message and evil.name in message
    assert not marker.exists()


def test_torch_zip_checkpoint_named_safetensors(tmp_path, capsys, seeded_library):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.safetensors"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_CreatesFile(marker)))
    assert "pickle" in _refused(capsys, str(evil))
    assert not marker.exists()


def test_peft_folder_with_only_pickled_weights(tmp_path, capsys, seeded_library):
    marker = tmp_path / "pwned"
    folder = tmp_path / "peft-bin"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_CreatesFile(marker)))
    assert "adapter_model.bin" in _refused(capsys, str(folder), "--link")
    assert not marker.exists()


def _header_bytes(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize("case, needle", [
    ("truncated", "truncated"),
    ("short", "too short"),
    ("garbage_json", "not valid JSON"),
    ("huge_header", "limit"),
    ("header_past_end", "header claims"),
    ("overlap", "overlaps"),
    ("wrong_size", "claims"),
    ("stray_bytes", "stray bytes"),
    ("not_lora", "no LoRA weights"),
    ("half_pair", "incomplete"),
])
def test_corrupt_files(tmp_path, capsys, seeded_library, loras, case, needle):
    target = tmp_path / f"{case}.safetensors"
    good = loras["kohya"].read_bytes()
    entry = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    payloads = {
        "truncated": good[:-100],
        "short": b"\x10\x00",
        "garbage_json": struct.pack("<Q", 12) + b"{not json!!}",
        "huge_header": struct.pack("<Q", 1 << 60) + b"{}",
        "header_past_end": struct.pack("<Q", 4096) + b"{}",
        "overlap": _header_bytes({"a.lora_down.weight": entry, "a.lora_up.weight": entry}) + bytes(16),
        "wrong_size": _header_bytes({"a.lora_down.weight": {**entry, "shape": [3, 3]}}) + bytes(16),
        "stray_bytes": _header_bytes({"a.lora_down.weight": entry}) + bytes(20),
        "not_lora": _header_bytes({"conv.weight": entry}) + bytes(16),
        "half_pair": _header_bytes({"lora_unet_x.lora_down.weight": entry}) + bytes(16),
    }
    target.write_bytes(payloads[case])
    assert needle in _refused(capsys, str(target), "--copy")


def _with_nan(source: Path, dest: Path) -> Path:
    from safetensors.torch import load_file, save_file

    tensors = load_file(source)
    first = sorted(tensors)[0]
    tensors[first][0, 0] = float("nan")
    save_file(tensors, dest)
    return dest


def test_nonfinite_refused_or_flagged(tmp_path, capsys, seeded_library, loras):
    broken = _with_nan(loras["sd"], tmp_path / "diverged.safetensors")
    assert "non-finite" in _refused(capsys, str(broken), "--copy")
    assert main(["library", "import", str(broken), "--allow-nonfinite"]) == 0
    out = capsys.readouterr().out
    assert "warning: non-finite values in 1 tensor(s)" in out
    from loratui.db.library import open_db
    from loratui.library import adapters

    row = adapters.resolve(open_db(), "diverged")
    assert row["warnings"] and "non-finite" in row["warnings"][0]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "/abs", "x" * 200, "12"])
def test_names_that_escape_or_confuse_are_refused(capsys, seeded_library, lora_copy, name):
    message = _refused(capsys, str(lora_copy("sd")), "--copy", "--name", name)
    assert "name" in message


def test_weight_name_cannot_climb_out(tmp_path, capsys, seeded_library, loras):
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copyfile(loras["kohya"], tmp_path / "outside.safetensors")
    assert "escape" in _refused(capsys, str(folder), "--weight-name", "../outside.safetensors", "--copy")


def test_symlinked_store_folder_is_not_followed(tmp_path, capsys, seeded_library, lora_copy):
    from engine.adapters.inspect import content_hash

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = lora_copy("sd")
    (adapters_dir() / content_hash(source)).symlink_to(elsewhere)
    assert "is a symbolic link" in _refused(capsys, str(source), "--copy")
    assert not any(elsewhere.iterdir())
