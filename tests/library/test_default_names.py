"""An import's default name says which adapter it is: the file's stem unless it is a generic one, else the
nearest folder above whose name is not a layout's or a checkpoint's."""

import shutil

import pytest

from loratui.library import adapters


@pytest.mark.parametrize(("layout", "name"), [
    ("my-style/diffusers/pytorch_lora_weights.safetensors", "my-style"),
    ("watercolor-v2/checkpoint-500/peft/adapter/pytorch_lora_weights.safetensors", "watercolor-v2"),
    ("loras/diffusers/watercolor.safetensors", "watercolor"),
    ("runs/shapes-demo-20261207-124846/output/pytorch_lora_weights.safetensors", "shapes-demo-20261207-124846"),
])
def test_a_file_is_named_after_its_stem_or_the_nearest_meaningful_folder(db, loras, tmp_path, layout, name):
    target = tmp_path / "home" / layout
    target.parent.mkdir(parents=True)
    shutil.copyfile(loras["sd"], target)
    assert adapters.register(db, target)["name"] == name


def test_a_peft_folder_is_named_past_its_checkpoint_folders(db, loras, tmp_path):
    target = tmp_path / "chat-tiny-llama-20261207" / "checkpoints" / "step-20" / "adapter"
    shutil.copytree(loras["peft"], target)
    assert adapters.register(db, target)["name"] == "chat-tiny-llama-20261207"


def test_kohya_output_name_comes_first(db, loras, tmp_path):
    target = tmp_path / "diffusers" / "pytorch_lora_weights.safetensors"
    target.parent.mkdir()
    shutil.copyfile(loras["kohya"], target)  # its header says ss_output_name = paper-cut
    assert adapters.register(db, target)["name"] == "paper-cut"
