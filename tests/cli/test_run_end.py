"""What `loratui run` shows at its end on a terminal: the base model's step-0 sample beside the adapter's last
one, in half blocks of the images' own colours, under labels saying which is which."""

import sqlite_utils
from PIL import Image

from loratui.runs.sample_art import HALF, compared_samples


def _run_with_samples(tmp_path, steps: dict[int, tuple[int, int, int]]):
    tmp_path.mkdir(exist_ok=True)
    db = sqlite_utils.Database(tmp_path / "lib.db")
    db["samples"].insert_all([{"run_id": "r", "step": step, "prompt": "a red circle", "path": f"s/{step}.png",
                               "text": None} for step in steps], columns={"text": str})
    (tmp_path / "s").mkdir()
    for step, colour in steps.items():
        Image.new("RGB", (64, 64), colour).save(tmp_path / "s" / f"{step}.png")
    return db


def test_the_base_sample_is_shown_beside_the_last_one(tmp_path):
    db = _run_with_samples(tmp_path, {0: (10, 20, 30), 100: (200, 0, 0), 200: (0, 200, 0)})
    text = compared_samples(db, "r", str(tmp_path))
    lines = text.plain.splitlines()
    assert lines[0] == "samples of 'a red circle', same seed:"
    assert lines[1].split() == ["base", "model", "(step", "0)", "adapter", "(step", "200)"]
    assert len(lines) == 2 + 20 and all(line.count(HALF) == 80 for line in lines[2:])  # two 40-pixel images
    styles = {str(span.style) for span in text.spans}
    assert "rgb(10,20,30) on rgb(10,20,30)" in styles and "rgb(0,200,0) on rgb(0,200,0)" in styles
    assert not any("200,0,0" in style for style in styles)  # the middle sample is not shown


def test_nothing_is_shown_without_a_base_sample_and_a_trained_one(tmp_path):
    assert compared_samples(_run_with_samples(tmp_path / "a", {0: (1, 2, 3)}), "r", str(tmp_path / "a")) is None
    assert compared_samples(_run_with_samples(tmp_path / "b", {50: (1, 2, 3)}), "r", str(tmp_path / "b")) is None
