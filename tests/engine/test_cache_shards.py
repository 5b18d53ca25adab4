"""Text-to-image caches: built by 2 processes exactly as by 1, memory-mapped from the run folder, and reused
entry by entry across runs by content, so editing one image re-encodes that image alone."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from homes import share_builtins

WORKER = Path(__file__).resolve().parents[2] / "bench" / "cache_build.py"
FIELDS = {"name": "cache", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
          "train": {"max_steps": 1, "resolution": 32, "random_flip": True, "center_crop": True}}


@pytest.fixture(scope="module")
def built(tmp_path_factory, builtin_home):
    """A task loaded in this process, its caches built by it alone into a fresh store: (task, log, run folder)."""
    import torch
    from accelerate import Accelerator

    from engine.data import load_rows
    from engine.spec import parse_spec
    from engine.tasks import load_task

    scratch = tmp_path_factory.mktemp("cache")
    threads = torch.get_num_threads()
    # One thread, as accelerate launch gives each CPU process: the text encoder's sums differ in their last bit
    # between thread counts.
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(share_builtins(scratch / "home", builtin_home)))
        spec = parse_spec(FIELDS)
        log = []
        try:
            task = load_task(spec, Accelerator(cpu=True, project_dir=str(scratch / "run")),
                             load_rows(spec.data, spec.train.seed), log=lambda level, message: log.append(message))
            yield task, log, scratch / "run"
        finally:
            torch.set_num_threads(threads)


def _build(task, rows) -> tuple[list[str], object]:
    from engine.tasks.text_to_image.cache import build_caches

    log = []
    return log, build_caches(task, rows, lambda level, message: log.append(message))


@pytest.fixture
def own_run_folder(built, tmp_path, monkeypatch):
    """The module's task, assembling its caches in this test's run folder (the module's stays as it was built)."""
    task = built[0]
    monkeypatch.setattr(task.accelerator.project_configuration, "project_dir", str(tmp_path / "run"))
    return task


@pytest.mark.slow
def test_two_processes_build_the_cache_of_one_bit_for_bit(built, tmp_path, builtin_home):
    _, log, run = built
    assert log == ["text embeddings: 0 of 24 captions reused from the cache, 24 encoded",
                   "latents: 0 of 48 images reused from the cache, 48 encoded, 2 orientation(s) each"]
    home = share_builtins(tmp_path / "home", builtin_home)  # a fresh store: the 2 processes encode everything
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--dynamo_backend", "no", "--mixed_precision", "no",
                          "--main_process_port", str(port), str(WORKER), "--worker", json.dumps(FIELDS),
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "LORATUI_HOME": str(home)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1])["log"] == log
    files = sorted(p.relative_to(run) for p in (run / "cache").rglob("*.npy"))
    assert [f.name for f in files] == ["geometry.npy", "mean.npy", "std.npy", "prompt_embeds.npy"]
    assert all((run / f).read_bytes() == (tmp_path / "run" / f).read_bytes() for f in files)


def test_every_process_maps_the_run_folder_tables_read_only(built):
    task, _, run = built
    caches = task.caches
    maps = [line.split() for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(".npy")]
    mapped = {Path(fields[-1]): fields[:2] for fields in maps}  # file: [address range, permissions]
    for tensor, name in ((caches.latent_mean, "latents/mean.npy"), (caches.latent_std, "latents/std.npy"),
                         (caches.prompt_embeds, "text/prompt_embeds.npy")):
        addresses, permissions = mapped[run / "cache" / name]
        low, high = (int(bound, 16) for bound in addresses.split("-"))
        assert low <= tensor.data_ptr() < high and permissions.startswith("r-")  # the file's pages, read-only
    assert caches.latent_mean.shape == (96, 4, 16, 16) and caches.prompt_embeds.shape == (24, 77, 32)


def _shapes_folder(folder: Path, count: int) -> Path:
    from PIL import Image, ImageDraw

    (folder / "train").mkdir(parents=True)
    lines = ["file_name,text"]
    for i in range(count):
        image = Image.new("RGB", (32, 32), (245, 245, 240))
        ImageDraw.Draw(image).rectangle((4 + i, 4, 20 + i, 24), fill=(40 * i, 90, 200))
        image.save(folder / "train" / f"{i}.png")
        lines.append(f"{i}.png,shape {i}")
    (folder / "train" / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_an_edited_image_alone_is_encoded_again_and_rows_keep_their_entries(own_run_folder, tmp_path):
    from PIL import Image, ImageDraw

    from engine.data import load_rows

    task = own_run_folder
    data = task.spec.data.model_copy(update={"source": str(_shapes_folder(tmp_path / "data", 6))})
    log, first = _build(task, load_rows(data, 0))
    assert log[-1] == "latents: 0 of 6 images reused from the cache, 6 encoded, 2 orientation(s) each"
    before = first.latent_mean.clone()
    edited = Image.open(tmp_path / "data" / "train" / "3.png").convert("RGB")
    ImageDraw.Draw(edited).ellipse((2, 2, 30, 30), fill=(250, 20, 20))
    edited.save(tmp_path / "data" / "train" / "3.png")
    rows = load_rows(data, 0)
    log, second = _build(task, rows)
    assert log == ["text embeddings: 6 captions already in the run folder",  # the captions did not change
                   "latents: 5 of 6 images reused from the cache, 1 encoded, 2 orientation(s) each"]
    changed = [i for i in range(12) if not second.latent_mean[i].equal(before[i])]
    assert changed == [second.latent_index(3, False), second.latent_index(3, True)]
    log, again = _build(task, rows)  # as a resumed run: the run folder's tables are read as they are
    assert log == ["text embeddings: 6 captions already in the run folder",
                   "latents: 6 images already in the run folder, 2 orientation(s) each"]
    assert again.latent_mean.equal(second.latent_mean)
    # Reversed rows keep their own entries: indexed by row, each found by its image's content.
    log, reversed_ = _build(task, rows.select(range(5, -1, -1)))
    assert log[-1] == "latents: 6 of 6 images reused from the cache, 0 encoded, 2 orientation(s) each"
    assert all(reversed_.latent_mean[reversed_.latent_index(5 - row, flipped)].equal(
        second.latent_mean[second.latent_index(row, flipped)]) for row in range(6) for flipped in (False, True))


def test_random_crops_of_non_square_images_are_not_cached(own_run_folder, tmp_path, monkeypatch):
    from PIL import Image

    from engine.data import load_rows

    task = own_run_folder
    folder = _shapes_folder(tmp_path / "data", 2)
    Image.new("RGB", (48, 32)).save(folder / "train" / "1.png")
    monkeypatch.setattr(task, "spec", task.spec.model_copy(
        update={"train": task.spec.train.model_copy(update={"center_crop": False})}))
    data = task.spec.data.model_copy(update={"source": str(folder)})
    log, caches = _build(task, load_rows(data, 0))
    assert log[-1] == "latents not cached: random crops of non-square images differ every epoch"
    assert caches.latent_mean is None and caches.prompt_embeds is not None


def test_a_table_keeps_bfloat16_bits_and_a_pack_is_found_only_once_whole(tmp_path):
    import torch

    from engine.tasks.text_to_image.cache_store import Store, TableWriter, map_table

    values = torch.randn(3, 5).to(torch.bfloat16)  # numpy has no bfloat16: its bits travel as int16
    writer = TableWriter(tmp_path / "table", 3)
    writer.put([2, 0, 1], {"x": values})
    writer.commit(["c", "a", "b"], "latents-test")
    keys, tensors = map_table(tmp_path / "table")
    assert keys == ["c", "a", "b"] and tensors["x"].dtype == torch.bfloat16 and tensors["x"][[2, 0, 1]].equal(values)
    store = Store("latents-test")
    store.new_pack(1).put([0], {"x": values[:1]})  # written but never added: a crash before its marker
    pack = store.new_pack(1)
    pack.put([0], {"x": values[1:2]})
    store.add(pack, ["b"])
    found = store.lookup(["a", "b"])
    assert list(found) == ["b"] and map_table(found["b"][0])[1]["x"][found["b"][1]].equal(values[1])
