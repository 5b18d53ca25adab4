"""A Session on tiny-sd: weights, switching without reloading, per-block scales, generation, contact sheet."""

import numpy as np
import pytest
import torch
from adapter_ops_data import builtin_model, sd_lora
from safetensors.torch import load_file, save_file

from engine.adapters import grid
from engine.adapters.generate import ImageSettings, generate_image, save_png
from engine.adapters.load import Session, quiet
from engine.errors import LoratuiError

SETTINGS = ImageSettings("a red circle", seed=3, steps=2, guidance=5.0, width=32, height=32)


@pytest.fixture(scope="module")
def session(builtin_home, tmp_path_factory):
    base = builtin_model("tiny-sd", builtin_home)
    root = tmp_path_factory.mktemp("loras")
    session = Session(str(base), device="cpu")
    session.add("a", sd_lora(base, root / "a", rank=4, seed=1))
    session.add("b.v2", sd_lora(base, root / "b", rank=8, seed=2))
    session.add("unet-only", sd_lora(base, root / "c", rank=4, seed=3, text_encoder=False))
    session.lora_root, session.base_path = root, base
    return session


def _image(session, settings=SETTINGS) -> np.ndarray:
    return np.asarray(generate_image(session, settings), dtype=np.int16)


@pytest.fixture(scope="module")
def base_image(session):
    with session.base_only():
        return _image(session)


def test_weights_scale_the_effect_and_zero_is_the_base(session, base_image):
    session.activate({"a": 0.0})
    assert np.array_equal(_image(session), base_image)
    session.activate({"a": 1.0})
    full = _image(session)
    session.activate({"a": -1.0})
    negative = _image(session)
    session.activate({"a": 2.5})
    beyond = _image(session)
    assert not np.array_equal(full, base_image)
    assert len({full.tobytes(), negative.tobytes(), beyond.tobytes()}) == 3


def test_switching_adapters_never_reloads_the_base(session, monkeypatch):
    from diffusers import DiffusionPipeline

    loads = []
    original = DiffusionPipeline.from_pretrained.__func__
    monkeypatch.setattr(
        DiffusionPipeline,
        "from_pretrained",
        classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)),
    )
    unet = session.pipe.unet
    images = set()
    for weights in ({"a": 1.0}, {"b.v2": 0.7}, {"a": 0.5, "b.v2": 0.5, "unet-only": 1.0}, {"a": 1.0}):
        session.activate(weights)
        images.add(_image(session).tobytes())
    assert loads == [] and session.base_loads == 1 and session.pipe.unet is unet
    assert len(images) == 3  # the first and last settings are the same, and give the same image
    # Loading one more adapter leaves the active set as it was: diffusers would make the newcomer active.
    session.add("late", sd_lora(session.base_path, session.lora_root / "late", rank=2, seed=9))
    assert _image(session).tobytes() in images and session.active == {"a": 1.0}


def test_per_block_scales_change_the_output(session):
    session.activate({"a": 1.0})
    full = _image(session)
    session.activate({"a": {"unet": {"up": {"block_0": [0.0, 0.0, 0.0]}, "mid": 0.0}}})
    blocked = _image(session)
    session.activate({"a": {"unet": {"down": 1.0, "mid": 1.0, "up": 1.0}, "text_encoder": 1.0}})
    explicit = _image(session)
    assert not np.array_equal(full, blocked)
    assert np.array_equal(full, explicit)


@pytest.mark.parametrize(
    ("scales", "named"),
    [
        ({"unet": {"down": {"block_0": 0.5}}}, "unet.down.block_0: no such block with transformers"),
        ({"unet": {"up": {"block_7": 0.5, "block_0": 1.0}}}, "unet.up.block_7: no such block"),
        ({"unet": {"up": {"block_0": [1.0, 0.5]}}}, "unet.up.block_0: 2 scales given, the block has 3"),
        ({"unet": {"middle": 1.0}}, "unet.middle: unknown part"),
        ({"unet": {"down": {"first": 1.0}}}, "unet.down.first: not a block name"),
        ({"text_encoder_2": 0.5}, "text_encoder_2: the base model has no text_encoder_2"),
        ({"unet": {"mid": "high"}}, "unet.mid: 'high' is not a finite number"),
    ],
)
def test_scales_that_do_not_fit_are_named_and_refused(session, scales, named):
    session.activate({"a": 1.0})
    with pytest.raises(LoratuiError) as error:
        session.activate({"a": scales})
    assert named in error.value.message
    assert "down.block_1 (2), mid (1), up.block_0 (3)" in error.value.hint
    assert session.active == {"a": 1.0}


def test_every_bad_scale_is_reported_at_once(session):
    with pytest.raises(LoratuiError) as error:
        session.activate({"unet-only": {"text_encoder": 0.5, "unet": {"down": {"block_0": 1, "block_5": 1}}}})
    message = error.value.message
    assert "text_encoder: this adapter has no text_encoder weights" in message
    assert "block_0" in message and "block_5" in message


def test_generation_is_reproducible(session):
    session.activate({"a": 0.8, "b.v2": 0.3})
    first, again = _image(session), _image(session)
    other_seed = _image(session, ImageSettings(**{**SETTINGS.__dict__, "seed": 4}))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_seed)


def test_bad_sizes_and_steps_are_refused_together(session):
    with pytest.raises(LoratuiError) as error:
        generate_image(session, ImageSettings("x", steps=0, width=30, height=12))
    message = error.value.message
    assert "steps: 0" in message and "width: 30" in message and "height: 12" in message


def test_adapter_files_that_do_not_fit_are_refused(session, tmp_path, capfd):
    pickle = tmp_path / "lora.bin"
    pickle.write_bytes(b"\x80\x04not really")
    with pytest.raises(LoratuiError, match="pickle"):
        session.add("pickled", pickle)
    state = load_file(session.lora_root / "a" / "pytorch_lora_weights.safetensors")
    state = {
        k: torch.zeros(v.shape[0], 48) if k.endswith("to_q.lora_A.weight") else v for k, v in state.items()
    }
    save_file(state, tmp_path / "other.safetensors")
    quiet()
    with pytest.raises(LoratuiError, match="does not fit base model") as error:
        session.add("other", tmp_path / "other.safetensors")
    assert "pickled" not in session.labels and "other" not in session.labels
    # One whole line: how many tensors, and the first of them, not the loader's cut-off header or its flood.
    message = error.value.message
    assert "\n" not in message and not message.endswith(":") and "tensors have other shapes" in message
    assert "size mismatch" not in capfd.readouterr().err


def test_contact_sheet_has_a_row_per_adapter_a_column_per_weight_and_the_base(session, base_image, tmp_path):
    from PIL import Image

    sheet = grid.render(session, SETTINGS, [("a", [0.0, 0.5, 1.0]), ("b.v2", [1.0, 0.5])])
    path = save_png(sheet, tmp_path / "grid.png", {"weights": [0.0, 0.5, 1.0]})
    saved = Image.open(path)
    # 120 px labels + 3 columns of (32 + 4) + 4; 20 px header + (base + 2 adapters) rows of (32 + 4) + 4.
    assert saved.size == (232, 132)
    assert "weights" in saved.text["loratui"]
    pixels = np.asarray(saved.convert("RGB"), dtype=np.int16)

    def cell(row, column):  # the base row is above the weights' header, the adapter rows below it
        top = 4 if row == 0 else 24 + 36 * row
        return pixels[top : top + 32, 124 + 36 * column : 156 + 36 * column]

    assert np.array_equal(cell(0, 0), base_image)  # the base alone
    assert np.array_equal(cell(1, 0), base_image)  # adapter a at weight 0
    assert not np.array_equal(cell(1, 2), base_image)
    assert (cell(2, 0) == grid.BACKGROUND).all()  # b.v2 has no weight-0 cell
    session.activate({"b.v2": 0.5})
    assert np.array_equal(cell(2, 1), _image(session))
