"""The dashboard process never imports torch: Browse's details and the run settings' estimate are answered by
its quick worker process, which keeps torch between questions and ends with the dashboard."""

import json
import os
import subprocess
import sys
from pathlib import Path

from homes import share_builtins

TIMEOUT_S = 300  # the built-ins may be built first


def test_browse_details_and_the_estimate_leave_the_dashboard_without_torch(tmp_path, builtin_home):
    home = share_builtins(tmp_path / "home", builtin_home)
    probe = Path(__file__).with_name("dashboard_questions.py")
    out = subprocess.run([sys.executable, str(probe)], env={**os.environ, "LORATUI_HOME": str(home)},
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["model"] == "built-in sd1 model" and report["dataset"] == {"train": 48}
    assert "optimizer steps 200" in report["first"] and "trainable       23.0k parameters of 2.3M" in report["first"]
    assert "trainable       46.1k parameters of 2.3M" in report["second"]
    assert report["libtorch"] == [] and report["heavy"] == []
    assert report["worker_libtorch"] and report["worker_ended"]


def test_a_question_superseded_while_it_waits_is_never_sent():
    from loratui.library.requests import DatasetRequest
    from loratui.library.worker_client import CANCELLED, WorkerClient

    client = WorkerClient()
    assert client.ask(DatasetRequest("builtin:shapes"), cancelled=lambda: True).status == CANCELLED
    assert not client.running  # no process was started for it


def test_a_datasets_preview_images_cross_the_pipe_scaled_and_keep_their_size():
    from PIL import Image

    from loratui.browse.entries import DatasetDetail
    from loratui.library.requests import PREVIEW_PX, DatasetResult, from_json, to_json
    from loratui.widgets.browse_detail import cell_text

    photo, icon = Image.new("RGB", (3000, 1500), "red"), Image.new("RGB", (8, 8), "green")
    rows = [{"image": photo, "text": "a"}, {"image": icon, "text": "b"}, {"image": None, "text": "c"}]
    sent = DatasetDetail(ref="pics", source="local", rows=rows, image_columns=["image"])
    got = from_json(DatasetResult, json.loads(json.dumps(to_json(DatasetResult(sent))))).detail
    assert got.rows[0]["image"].size == (PREVIEW_PX, PREVIEW_PX // 2) and got.rows[1]["image"].getpixel((0, 0)) == (0, 128, 0)
    assert [str(cell_text(row["image"])) for row in got.rows[:2]] == ["[image 3000×1500]", "[image 8×8]"]
    assert got.rows[2] == {"image": None, "text": "c"}
