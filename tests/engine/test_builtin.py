import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine.builtin as builtin
from engine.errors import LoratuiError

# The built-ins built in seconds; a trained one (minutes) is built here at a few steps (test_a_trained_...).
QUICK = [name for name in builtin.names() if not builtin._BUILTINS[name].trained]


def _build_all(home: Path) -> dict[str, float]:
    seconds = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        for name in QUICK:
            start = time.perf_counter()
            builtin.path(name)
            seconds[name] = time.perf_counter() - start
    return seconds


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every built-in built once into one home; yields (cache folder, build seconds by name)."""
    # Import first so the timings measure building, not loading libraries.
    import diffusers  # noqa: F401
    import transformers  # noqa: F401

    home = tmp_path_factory.mktemp("home")
    seconds = _build_all(home)
    return home / "builtin", seconds


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LORATUI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_import_is_cheap():
    code = (
        "import sys, engine.builtin; "
        "print([m for m in ('torch', 'diffusers', 'transformers', 'tokenizers', 'PIL') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_refs():
    assert builtin.names() == [
        "shapes", "shapes-masks", "shapes-night", "tiny-bert", "tiny-chat", "tiny-instruct", "tiny-llama",
        "tiny-reviews", "tiny-sd", "tiny-sd-shapes", "tiny-sdxl", "tiny-segformer", "tiny-text",
    ]
    assert [name for name in builtin.names() if name not in QUICK] == ["tiny-sd-shapes"]
    assert builtin.is_builtin("builtin:tiny-sd") and not builtin.is_builtin("tiny-sd")
    assert builtin.strip("builtin:tiny-sd") == builtin.strip("tiny-sd") == "tiny-sd"  # noqa: B005
    assert builtin.resolve("runwayml/stable-diffusion-v1-5") == "runwayml/stable-diffusion-v1-5"


def test_describe_before_building(home):
    entries = {entry["name"]: entry for entry in builtin.describe()}
    assert list(entries) == builtin.names()
    assert entries["tiny-sdxl"] | {"summary": ""} == {
        "name": "tiny-sdxl", "kind": "model", "family": "sdxl", "task": "text-to-image", "summary": "",
        "trained": False, "built": False,
    }
    assert entries["tiny-sd-shapes"]["trained"] and entries["tiny-sd-shapes"]["family"] == "sd1"
    assert entries["shapes"]["kind"] == "dataset" and entries["shapes"]["family"] is None
    assert not any(entry["built"] for entry in entries.values())


def test_unknown_name(home):
    with pytest.raises(LoratuiError) as caught:
        builtin.path("builtin:nope")
    assert str(caught.value) == "unknown built-in 'builtin:nope'"
    assert "builtin:tiny-sd" in caught.value.hint
    with pytest.raises(LoratuiError):
        builtin.resolve("builtin:nope")


def test_builds_are_quick_and_marked(built):
    cache, seconds = built
    assert all(s < 10 for s in seconds.values()), seconds
    assert sorted(p.name for p in cache.iterdir()) == QUICK  # no temp folders left behind
    assert all((cache / name / builtin.MARKER).is_file() for name in QUICK)


def test_builds_are_byte_identical(built, tmp_path):
    cache, _ = built
    _build_all(tmp_path)
    for name in QUICK:
        first, second = _files(cache / name), _files(tmp_path / "builtin" / name)
        assert first.keys() == second.keys(), name
        assert [f for f in first if first[f] != second[f]] == [], name


def test_path_reuses_a_built_folder(built, monkeypatch):
    cache, _ = built
    monkeypatch.setenv("LORATUI_HOME", str(cache.parent))
    marker = cache / "tiny-sd" / builtin.MARKER
    before = marker.stat().st_mtime_ns
    assert builtin.resolve("builtin:tiny-sd") == str(cache / "tiny-sd")
    assert marker.stat().st_mtime_ns == before
    assert {entry["name"] for entry in builtin.describe() if entry["built"]} == set(QUICK)


def test_half_built_folder_is_replaced(home):
    folder = home / "builtin" / "tiny-text"
    folder.mkdir(parents=True)
    (folder / "junk.txt").write_text("interrupted")
    assert builtin.path("tiny-text") == folder
    assert sorted(p.name for p in folder.iterdir()) == [builtin.MARKER, "train.jsonl"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny-text"]


def test_losing_a_build_race_keeps_the_winner(home):
    folder = builtin.path("tiny-text")
    winner = _files(folder)
    builtin._build("tiny-text", folder)  # as if another process renamed its folder into place first
    assert _files(folder) == winner
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny-text"]


def test_tiny_sd_generates(built):
    import numpy as np
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(built[0] / "tiny-sd")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]
    image = pipe("a red circle", num_inference_steps=2, output_type="np").images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()


def test_tiny_sdxl_generates(built):
    import numpy as np
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(built[0] / "tiny-sdxl")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.cross_attention_dim == 64
    image = pipe("a red circle", num_inference_steps=2, output_type="np").images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()


def test_tiny_llama_trains_and_generates(built):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = built[0] / "tiny-llama"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    batch = tokenizer(["a red circle", "the small blue square sits on the left."], padding=True, return_tensors="pt")
    assert batch.input_ids[0, 0] == tokenizer.bos_token_id
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss) and model.model.embed_tokens.weight.grad.abs().sum() > 0
    prompt = tokenizer("a red circle", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, prompt.input_ids.shape[1] + 4)
    assert tokenizer.decode(prompt.input_ids[0], skip_special_tokens=True) == "a red circle"


def test_shapes_loads_as_imagefolder(built, tmp_path):
    import datasets

    data = datasets.load_dataset("imagefolder", data_dir=str(built[0] / "shapes"), cache_dir=str(tmp_path))
    train = data["train"]
    assert train.column_names == ["image", "text"] and train.num_rows == 48
    assert train[0]["image"].size == (64, 64)
    assert train[0]["text"] == "a red circle"
    assert {len(text.split()) for text in train["text"]} == {3}


def test_tiny_text_loads_as_json(built, tmp_path):
    import datasets

    files = str(built[0] / "tiny-text" / "train.jsonl")
    train = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path))["train"]
    assert train.column_names == ["text"] and train.num_rows == 200
    assert len(set(train["text"])) > 150


def test_shapes_night_is_the_shapes_at_night(built, tmp_path):
    import datasets
    import numpy as np

    from engine.builtin.data import NIGHT

    day = datasets.load_dataset("imagefolder", data_dir=str(built[0] / "shapes"), cache_dir=str(tmp_path))["train"]
    night = datasets.load_dataset("imagefolder", data_dir=str(built[0] / "shapes-night"),
                                  cache_dir=str(tmp_path))["train"]
    assert night.num_rows == day.num_rows == 48
    assert night["text"] == [f"{text} at night" for text in day["text"]]
    for a, b in zip(day.select(range(6))["image"], night.select(range(6))["image"], strict=True):
        a, b = np.asarray(a), np.asarray(b)
        background = (a == a[0, 0]).all(axis=-1)  # the corner is background: shapes keep 8 px off the edges
        assert (b[background] == NIGHT).all() and (a[~background] == b[~background]).all()


@pytest.fixture
def few_steps(monkeypatch):
    """builtin:tiny-sd-shapes' recipe at a few steps on a few images: every part of it, in seconds."""
    from engine.builtin import pretrain

    for name, value in {"IMAGES": 24, "VAE_STEPS": 3, "UNET_STEPS": 3, "VAE_BATCH": 4, "UNET_BATCH": 4}.items():
        monkeypatch.setattr(pretrain, name, value)
    return pretrain


def test_a_trained_builtin_is_reproducible_and_an_sd1_pipeline_at_32_px(few_steps, tmp_path, monkeypatch, capsys):
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    from engine import model_kind

    folders = []
    for home in (tmp_path / "a", tmp_path / "b"):
        monkeypatch.setenv("LORATUI_HOME", str(home))
        torch.manual_seed(123 if home.name == "a" else 456)  # the build is seeded: the caller's RNG does not matter
        folders.append(builtin.path("builtin:tiny-sd-shapes"))
    assert capsys.readouterr().err == ""  # no progress bar where stderr is not a terminal
    first, second = (_files(folder) for folder in folders)
    assert first.keys() == second.keys() and [f for f in first if first[f] != second[f]] == []
    kind = model_kind.from_folder(folders[0])
    assert (kind.family, kind.task) == (builtin._BUILTINS["tiny-sd-shapes"].family, "text-to-image")
    pipe = StableDiffusionPipeline.from_pretrained(folders[0])
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae.config.scaling_factor != 0.18215  # measured on the training latents, as SD's was
    image = pipe("a red circle", num_inference_steps=2, output_type="np").images
    assert image.shape == (1, 32, 32, 3) and np.isfinite(image).all()
    # The encoder is deterministic, so a trainer's latent_dist.sample() gives the latents the UNet learned.
    pixels = torch.zeros(1, 3, 32, 32)
    dist = pipe.vae.encode(pixels).latent_dist
    assert torch.allclose(dist.sample(), dist.mean, atol=1e-5)


def test_a_trained_builtin_shows_its_progress_on_a_terminal(few_steps, monkeypatch, capsys):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    builtin.path("builtin:tiny-sd-shapes")
    assert "building builtin:tiny-sd-shapes" in terminal.getvalue()
    assert f"{few_steps.VAE_STEPS + few_steps.UNET_STEPS}/{few_steps.VAE_STEPS + few_steps.UNET_STEPS}" in terminal.getvalue()


def test_built_apart_in_a_child_that_keeps_torch_and_its_output_away(home):
    code = ("import sys, engine.builtin as b; b.build_apart('builtin:tiny-text', 60); "
            "print('torch' in sys.modules, b.path('tiny-text').is_dir())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "LORATUI_HOME": str(home)})
    assert out.stdout.split() == ["False", "True"] and out.stderr == ""
    with pytest.raises(LoratuiError) as caught:
        builtin.build_apart("builtin:nope", 60)
    assert str(caught.value) == "building builtin:nope failed: unknown built-in 'builtin:nope'"
    assert "builtin:tiny-sd" in caught.value.hint
