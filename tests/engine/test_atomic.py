"""Staged folders: filled beside their place, renamed into it whole; a failure leaves the old one untouched."""

import pytest

from engine.atomic import replace_folder, staged_folder


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with staged_folder(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        (tmp / "new.txt").write_text("new")
        replace_folder(tmp, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staged or old folder left
    assert [p.name for p in dest.iterdir()] == ["new.txt"]


def test_a_failed_fill_leaves_the_old_folder_and_no_litter(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(OSError), staged_folder(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (dest / "old.txt").read_text() == "old"


def test_an_empty_or_missing_destination_is_simply_taken(tmp_path):
    for dest in (tmp_path / "missing", tmp_path / "empty"):
        if dest.name == "empty":
            dest.mkdir()
        with staged_folder(dest) as tmp:
            (tmp / "f").write_text("x")
            replace_folder(tmp, dest)
        assert (dest / "f").read_text() == "x"
