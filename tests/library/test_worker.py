"""The library worker through its client: progress, results, a warm base, cancel and errors in one line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from adapter_ops_data import ink_and_paper_home
from PIL import Image

from loratui.library.requests import CheckRequest, CombineRequest, GenerateRequest, LayoutRequest, Pick
from loratui.library.worker_client import CANCELLED, DONE, FAILED, WorkerClient

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "diffusers", "transformers", "peft", "accelerate"]


@pytest.fixture(scope="module")
def home(builtin_home, tmp_path_factory):
    """A library holding ink and paper (tiny-sd LoRAs), shared by this module's one warm worker."""
    return ink_and_paper_home(builtin_home, tmp_path_factory.mktemp("worker"))


@pytest.fixture(scope="module")
def worker(home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        client = WorkerClient()  # its environment and log are those of the module's library
    yield client
    client.close()


def _image(**changes) -> GenerateRequest:
    settings = {"prompt": "a red circle", "adapters": [Pick("ink", 0.8)], "seed": 7, "steps": 3, "width": 32,
                "height": 32}
    return GenerateRequest(**{**settings, **changes})


def _run(worker, request):
    job = worker.submit(request)
    return [str(p) for p in job], job.wait()


def _generations(home: Path) -> list[tuple]:
    from loratui.db.library import connect

    db = connect(home / "library.db")
    try:
        return db.execute("SELECT id, path, adapters FROM generations ORDER BY id").fetchall()
    finally:
        db.conn.close()


def test_a_generation_reports_its_steps_and_is_recorded(worker, home):
    events, outcome = _run(worker, _image())
    assert outcome.status == DONE, outcome.error
    assert events[:3] == ["loading base", "loading adapters", "applying adapters"]
    assert events[3:] == [f"denoising step {k}/3" for k in (0, 1, 2, 3)] + ["saving"]
    result = outcome.result
    assert Path(result.path).is_file() and Image.open(result.path).size == (32, 32)
    assert result.base_loads == 1 and result.seed == 7
    row = [r for r in _generations(home) if r[0] == result.record["id"]][0]
    assert row[1] == result.path and json.loads(row[2]) == [{"id": 1, "name": "ink", "weight": 0.8}]


def test_other_weights_switch_without_reloading_the_base(worker):
    _, first = _run(worker, _image())
    events, second = _run(worker, _image(adapters=[Pick("ink", 0.2), Pick("paper", -0.5)]))
    assert second.status == DONE and "loading base" not in events
    assert second.result.base_loads == first.result.base_loads
    pixels = [np.asarray(Image.open(o.result.path), dtype=np.int16) for o in (first, second)]
    assert not np.array_equal(*pixels)


def test_cancel_stops_a_generation_and_the_worker_stays_warm(worker, home):
    before = len(_generations(home))
    job = worker.submit(_image(steps=40))
    steps = []
    for progress in job:
        if progress.stage == "denoising":
            steps.append(progress.step)
            if progress.step == 1:
                job.cancel()
    assert job.outcome.status == CANCELLED and max(steps) < 40
    assert len(_generations(home)) == before
    events, after = _run(worker, _image())
    assert after.status == DONE and "loading base" not in events and after.result.base_loads == 1


def test_cancel_stops_a_contact_sheet_between_its_cells(worker, home):
    before = len(_generations(home))
    job = worker.submit(_image(adapters=[Pick("ink"), Pick("paper")], grid=True, grid_weights=[0.5, 1.0], steps=40))
    steps = []
    for progress in job:
        if progress.stage == "denoising":
            steps.append(progress.step)
            if progress.step == 1:
                job.cancel()
    # Had the sheet gone on after a cell stopped early, the next cell would count from 1 again.
    assert job.outcome.status == CANCELLED and steps == sorted(set(steps)) and max(steps) < 40
    assert len(_generations(home)) == before


def test_a_bad_request_fails_in_one_line(worker):
    _, outcome = _run(worker, _image(adapters=[Pick("nope")]))
    assert outcome.status == FAILED
    assert outcome.error.message == "unknown adapter 'nope'" and outcome.error.hint
    assert worker.running


def test_check_layout_and_combine_run_in_the_worker(worker, home):
    _, check = _run(worker, CheckRequest("ink"))
    assert check.status == DONE and check.result.fits and check.result.matched == check.result.checked > 0
    _, layout = _run(worker, LayoutRequest("paper"))
    assert layout.status == DONE and set(layout.result.parts) == {"unet", "text_encoder"}
    assert layout.result.up and all(isinstance(k, int) for k in layout.result.up)
    _, combined = _run(worker, CombineRequest(["ink", "paper"], name="inkpaper", weights=[0.6, 0.4]))
    assert combined.status == DONE and combined.result.entry["rank"] == 12 and not combined.result.existed


def test_a_bug_leaves_its_traceback_in_a_log_and_the_worker_usable(worker, home):
    _, outcome = _run(worker, _image(steps="many"))
    assert outcome.status == FAILED and "traceback saved in" in outcome.error.message
    log = Path(outcome.error.message.rsplit(" ", 1)[1])
    assert log.parent == home / "logs" and "TypeError" in log.read_text()
    events, after = _run(worker, _image())
    assert after.status == DONE and events[0] == "loading base"  # the model was let go, to be safe


def test_the_client_imports_no_torch():
    probe = "import loratui.library.worker_client, json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not [name for name in HEAVY if name in loaded]
