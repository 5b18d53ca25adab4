"""The mixer on tiny-sd adapters: weights typed, nudged and scaled per block; generate, sweep, cancel, a failure,
combine and merge, each through one warm library worker shared by the module."""

import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from adapter_ops_data import ink_and_paper_home
from PIL import Image
from textual.widgets import Input

from loratui.app import LoratuiApp
from loratui.library.worker_client import WorkerClient
from loratui.screens.mixer import MixerScreen
from loratui.widgets.job_footer import JobFooter
from loratui.widgets.weights import BlockScales, WeightRow, WeightSlider

from .conftest import until
from .tmux import Tmux, needs_tmux

IMAGE = {"prompt": "a red circle", "seed": "7", "steps": "3", "size": "32x32"}
JOB_S = 60  # the longest a job may take here: the first loads the base


@pytest.fixture(scope="module")
def home(builtin_home, tmp_path_factory):
    """A library holding ink (preferred weight 0.8) and paper (1.0), tiny-sd LoRAs, shared by this module's one warm worker."""
    # The mixer starts from each adapter's preferred weight.
    return ink_and_paper_home(builtin_home, tmp_path_factory.mktemp("mixer"), ink_weight=0.8)


@pytest.fixture(scope="module")
def worker(home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        client = WorkerClient()
    yield client
    client.close()


def _query(home: Path, sql: str, params=()) -> list[tuple]:
    with sqlite3.connect(home / "library.db") as db:
        return db.execute(sql, params).fetchall()


def _rows(home: Path) -> list[dict]:
    """ink and paper as the library lists them (a combine test adds a third adapter)."""
    from loratui.db.library import connect
    from loratui.library.adapters import list_adapters

    db = connect(home / "library.db")
    try:
        return sorted((row for row in list_adapters(db) if row["name"] in ("ink", "paper")), key=lambda r: r["id"])
    finally:
        db.conn.close()


def _notes(app) -> list[tuple[str, str]]:
    return [(note.severity, note.message) for note in app._notifications]


async def _open(app, pilot, home, action: str = "generate", **fields) -> MixerScreen:
    screen = MixerScreen(_rows(home), action)
    app.push_screen(screen)
    await pilot.pause()
    for name, value in fields.items():
        screen.query_one(f"#mix-{name}", Input).value = value
    return screen


async def _run(pilot, screen: MixerScreen) -> str:
    """Start the screen's operation and wait for it to end (a warm worker may answer at once); the footer's
    last words."""
    await pilot.press("ctrl+g")
    await until(pilot, lambda: not screen.busy, timeout=JOB_S)
    return screen.query_one(JobFooter).stage


async def test_weights_are_typed_nudged_scaled_per_block_and_generated_with(worker, home):
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, **IMAGE)
        ink, paper = screen.query(WeightRow)
        assert screen.focused is screen.query_one("#mix-prompt")  # what to type first
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "shift+tab")  # back past paper to ink's slider
        assert screen.focused is ink.query_one(WeightSlider)
        await pilot.press("right", "right", "left", "right")
        assert ink.query_one(Input).value == "0.9" and ink.weight() == 0.9
        paper.query_one(Input).focus()
        await pilot.press("ctrl+u", *"-0.35")
        assert paper.query_one(WeightSlider).value == -0.35 and paper.weight() == -0.35
        await pilot.press(*"x")  # a number field takes no letters
        assert paper.query_one(Input).value == "-0.35"

        ink.query_one(WeightSlider).focus()
        await pilot.press("ctrl+b")  # the blocks, as the worker's loaded pipeline has them
        await until(pilot, lambda: not screen.busy, timeout=JOB_S)
        blocks = ink.query_one(BlockScales)
        names = blocks.names()
        assert names[0] == "text_encoder" and "mid" in names and any(n.startswith("up.") for n in names)
        boxes = {box.name: box for box in blocks.query(Input)}
        boxes["mid"].value = "1e999"
        await pilot.press("ctrl+g")  # refused as the CLI refuses it, before anything is sent
        assert not screen.busy and "unet.mid: inf is not a finite number" in _notes(app)[-1][1]
        boxes["mid"].value = "0.3"
        assert await _run(pilot, screen) == "generate: done"
        (recorded,) = _query(home, "SELECT adapters FROM generations ORDER BY id DESC LIMIT 1")[0]
        ink_used, paper_used = json.loads(recorded)
        assert paper_used["weight"] == -0.35 and ink_used["weight"] is None
        assert ink_used["scales"]["unet"]["mid"] == 0.3 and ink_used["scales"]["text_encoder"] == 0.9


async def test_generate_shows_the_image_it_recorded(worker, home):
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, **IMAGE)
        assert await _run(pilot, screen) == "generate: done"
        generation, path, adapters = _query(home, "SELECT id, path, adapters FROM generations ORDER BY id DESC")[0]
        assert Image.open(path).size == (32, 32)
        assert json.loads(adapters) == [{"id": 1, "name": "ink", "weight": 0.8},
                                        {"id": 2, "name": "paper", "weight": 1.0}]
        pane = screen.query_one("#mixer-image")
        assert pane.query("#pane-image") and pane.caption.startswith(f"generate #{generation} · seed 7 · {path}")


async def test_sweep_shows_one_contact_sheet(worker, home):
    from engine.adapters import grid

    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, "sweep", **IMAGE, sweep="0, 1")
        assert await _run(pilot, screen) == "sweep: done"
        path, adapters, settings = _query(home, "SELECT path, adapters, settings FROM generations ORDER BY id DESC")[0]
        assert json.loads(settings)["grid"] and [a["weights"] for a in json.loads(adapters)] == [[0, 1], [0, 1]]
        assert Image.open(path).size == grid.sheet_size(2, 2, (32, 32))
        assert screen.query_one("#mixer-image").caption.startswith("sweep #")


async def test_esc_cancels_a_generation_mid_way(worker, home):
    before = _query(home, "SELECT count(*) FROM generations")[0][0]
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, **{**IMAGE, "steps": "500"})
        await pilot.press("ctrl+g")
        footer = screen.query_one(JobFooter)
        await until(pilot, lambda: "denoising step" in footer.stage and not footer.stage.endswith(" 0/500"),
                    timeout=JOB_S)
        await pilot.press("escape")
        await until(pilot, lambda: not screen.busy, timeout=JOB_S)
        assert footer.stage == "generate: cancelled" and app.screen is screen  # esc cancelled, did not close
    assert _query(home, "SELECT count(*) FROM generations")[0][0] == before


async def test_a_failure_is_a_one_line_notification(worker, home):
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, **{**IMAGE, "size": "36x36"})
        assert (await _run(pilot, screen)).startswith("generate: failed: bad generation settings")
        severity, message = _notes(app)[-1]
        assert severity == "error" and message.startswith("bad generation settings: width: 36 (need a positive")
        assert "Traceback" not in message and "hint:" in message


async def test_combine_adds_an_entry_with_its_lineage(worker, home):
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, home, "generate")
        await pilot.press("ctrl+t", "ctrl+t")  # generate -> sweep -> combine
        screen.query_one("#mix-name", Input).value = "inkpaper"
        assert await _run(pilot, screen) == "combine: done"
        (child,) = _query(home, "SELECT id FROM adapters WHERE name = 'inkpaper'")[0]
        assert _query(home, "SELECT parent, parent_name, weight, method FROM lineage WHERE child = ?", [child]) == [
            (1, "ink", 0.8, "cat"), (2, "paper", 1.0, "cat")]
        assert app.selected_adapter == child  # the library puts its cursor on the new entry


async def test_merge_writes_a_folder_stock_diffusers_loads(worker, home, tmp_path):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / "merged"
    app = LoratuiApp(screen="library", worker=worker)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = MixerScreen(_rows(home), "merge")
        app.push_screen(screen)
        await pilot.pause()
        assert screen.query_one("#mix-base", Input).value == _rows(home)[0]["base_model"]
        screen.query_one("#mix-out", Input).value = str(out)
        assert await _run(pilot, screen) == "merge: done"
    pipe = StableDiffusionPipeline.from_pretrained(out)
    assert pipe.unet is not None and pipe.text_encoder is not None


def _children(pid: int) -> list[int]:
    """Of every thread: the worker process is started from one of the dashboard's worker threads."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _maps_libtorch(pid: int) -> list[str]:
    return [line for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "libtorch" in line]


def _until_shown(tmux: Tmux, key: str, text: str) -> str:
    """Press `key` (one that may safely be pressed again) until `text` shows: Textual moves focus after the
    keys it has already read, so an Enter right after the filter's may still reach the filter."""
    for _ in range(8):
        tmux.keys(key)
        try:
            return tmux.wait_for(text, timeout=2)
        except AssertionError:
            continue
    return tmux.wait_for(text, timeout=1)


@needs_tmux
def test_filter_detail_and_generate_in_a_real_terminal(home):
    """The core path in tmux: filter the library, open an adapter's detail, generate from the mixer; the
    dashboard process maps no libtorch before or after, and its worker ends with it."""
    socket = f"/tmp/loratui-mixer-{os.getpid()}.sock"
    tmux = Tmux(socket, home)
    try:
        tmux.start("--screen library")
        listed = re.search(r"(\d+) of \1 adapters", tmux.wait_for(" ink ")).group(1)  # all of them, ink too
        pane = int(subprocess.run([*tmux.base, "display", "-p", "-t", "t", "#{pane_pid}"], capture_output=True,
                                  text=True, check=True).stdout)
        (dashboard,) = _children(pane)
        assert _maps_libtorch(dashboard) == []
        tmux.keys("/ink")  # in one burst, as a fast typist or a paste sends it: all of it lands in the filter
        screen = tmux.wait_for("ink")
        deadline = time.monotonic() + 10
        while f"{listed} of {listed} adapters" in screen and time.monotonic() < deadline:
            time.sleep(0.05)
            screen = tmux.screen()
        assert not re.search(r"\bpaper\b", screen), screen  # filtered out (a combination named inkpaper may stay)
        tmux.keys("Enter")  # back to the table
        screen = _until_shown(tmux, "Enter", "sha256")  # the detail of the first match
        assert "rank / alpha" in screen
        tmux.keys("g")
        tmux.wait_for("mixer · generate · 1 adapter")  # the prompt has focus
        tmux.keys("a red circle")
        tmux.wait_for("a red circle")
        tmux.keys("Enter")
        screen = tmux.wait_for("generate: done", timeout=JOB_S * 2)
        assert "generate #" in screen and "seed " in screen
        (worker,) = _children(dashboard)
        assert "loratui.library.worker" in Path(f"/proc/{worker}/cmdline").read_text()
        assert _maps_libtorch(dashboard) == [] and _maps_libtorch(worker)  # the worker has torch; the dashboard not
        tmux.keys("Escape")
        tmux.wait_for("/ Filter")  # the library's footer again
        tmux.keys("q")
        tmux.wait_for("EXITED 0")
        assert not Path(f"/proc/{worker}").exists()
    finally:
        tmux.close()
        if os.path.exists(socket):
            os.unlink(socket)
