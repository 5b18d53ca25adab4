"""The semantic-segmentation spec and its preflight: templates that validate, labels found beside the data or in
the model, and bad specs refused one line each by `loratui spec validate` before any model loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import share_builtins

from engine.errors import LoratuiError
from engine.spec import parse_spec, parse_toml, spec_errors
from engine.spec_template import template_toml, template_values
from engine.tasks.semantic_segmentation.source import class_names
from engine.tasks.semantic_segmentation.spec import Data

TASK = "semantic-segmentation"
LABELS = ["background", "circle", "square", "triangle"]


def _spec(**sections) -> dict:
    values = template_values(TASK)
    for name, fields in sections.items():
        values[name] = {**values[name], **fields}
    return values


def test_the_template_trains_the_builtins_offline_and_evaluates_on_test():
    spec = parse_toml(template_toml(TASK))
    assert spec.model_dump() == template_values(TASK)
    assert (spec.model.pretrained, spec.data.source, spec.eval.split) == ("builtin:tiny-segformer",
                                                                          "builtin:shapes-masks", "test")
    assert (spec.lora.target_modules, spec.lora.bias, spec.lora.modules_to_save) == (["q_proj", "v_proj"],
                                                                                     "lora_only", [])
    assert (spec.data.image_column, spec.data.mask_column, spec.data.ignore_index) == ("image", "mask", 255)
    real = parse_spec(template_values(TASK, family="vision"))
    assert real.model.pretrained == "nvidia/mit-b0" and real.eval.split_ratio == 0.1
    with pytest.raises(LoratuiError, match="unknown model family 'sd1' for semantic-segmentation"):
        template_values(TASK, family="sd1")


@pytest.mark.parametrize(("sections", "error"), [
    ({"data": {"labels": ["a", "b", "a"]}}, "data.labels: 'a' named more than once (allowed: distinct names)"),
    ({"data": {"labels": ["a", " "]}}, "data.labels: the name of class 1 is empty"),
    ({"data": {"ignore_index": -1}}, "data.ignore_index: must be >= 0 (got -1)"),
    ({"lora": {"init": "pissa"}}, "lora.init: 'pissa' is not allowed (allowed: default, gaussian)"),
    ({"train": {"crop_scale": 0.0}}, "train.crop_scale: must be > 0.0 (got 0.0)"),
    ({"train": {"resolution": 32}}, "train.resolution: unknown field"),
])
def test_bad_fields_are_one_line_each(sections, error):
    errors = spec_errors(_spec(**sections))
    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_class_names_come_from_the_spec_then_beside_the_data_then_a_segmentation_model(tmp_path):
    data = Data(source=str(tmp_path))
    segmenter = {"architectures": ["SegformerForSemanticSegmentation"], "id2label": {"0": "sky", "1": "road"}}
    assert class_names(data, segmenter) == (["sky", "road"], "the model's id2label")
    (tmp_path / "id2label.json").write_text(json.dumps({"1": "b", "0": "a"}))
    assert class_names(data, segmenter) == (["a", "b"], f"id2label.json of {tmp_path}")
    assert class_names(Data(source=str(tmp_path), labels=["x"]), segmenter) == (["x"], "data.labels")
    (tmp_path / "id2label.json").write_text(json.dumps({"0": "a", "2": "c"}))
    with pytest.raises(LoratuiError, match="has no name for class 1"):
        class_names(data, segmenter)
    (tmp_path / "id2label.json").unlink()
    # A backbone's labels (ImageNet's, for nvidia/mit-b0) or generic ones are no names for mask classes.
    for config in ({"architectures": ["SegformerForImageClassification"], "id2label": {"0": "tench"}},
                   {"architectures": ["SegformerForSemanticSegmentation"], "id2label": {"0": "LABEL_0"}}, None):
        with pytest.raises(LoratuiError, match="data.labels: no class names for the masks"):
            class_names(data, config)


def _masks_dataset(folder: Path) -> Path:
    """An imagefolder as builtin:shapes-masks lays it out, with one good row and three bad ones."""
    from PIL import Image

    rows = {"good": (Image.new("L", (32, 32), 1), 32), "id7": (Image.new("L", (32, 32), 7), 32),
            "rgb": (Image.new("RGB", (32, 32)), 32), "small": (Image.new("L", (16, 16), 0), 32)}
    for sub in ("images", "masks"):
        (folder / "train" / sub).mkdir(parents=True)
    lines = ["image_file_name,mask_file_name"]
    for name, (mask, size) in rows.items():
        Image.new("RGB", (size, size), (200, 10, 10)).save(folder / "train" / "images" / f"{name}.png")
        mask.save(folder / "train" / "masks" / f"{name}.png")
        lines.append(f"images/{name}.png,masks/{name}.png")
    (folder / "train" / "metadata.csv").write_text("\n".join(lines) + "\n")
    (folder / "id2label.json").write_text(json.dumps(dict(enumerate(LABELS))))
    return folder


def _model_with_multihead_attention(folder: Path, segformer: Path) -> Path:
    """tiny-segformer's files, plus a torch MultiheadAttention's weights in the head: what DoRA cannot wrap."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_bytes((segformer / name).read_bytes())
    tensors = load_file(segformer / "model.safetensors")
    tensors["decode_head.attn.in_proj_weight"] = np.zeros((96, 32), dtype=np.float32)
    tensors["decode_head.attn.out_proj.weight"] = np.zeros((32, 32), dtype=np.float32)
    save_file(tensors, folder / "model.safetensors")
    return folder


def test_bad_specs_are_refused_one_line_each_before_any_model_loads(tmp_path, builtin_home):
    from engine import builtin

    home = share_builtins(tmp_path / "home", builtin_home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(home))
        segformer = builtin.path("builtin:tiny-segformer")  # built beforehand: what is watched is the check
        builtin.path("builtin:shapes-masks")
    masks = _masks_dataset(tmp_path / "masks")
    dora_model = _model_with_multihead_attention(tmp_path / "mha-segformer", segformer)
    specs = {
        "ok": {},
        "column": {"data": {"mask_column": "segmentation"}, "eval": {"split": ""}},
        "masks": {"data": {"source": str(masks)}, "eval": {"split": ""}},
        "targets": {"lora": {"target_modules": ["query", "value"]}},
        "dora": {"model": {"pretrained": str(dora_model)}, "lora": {"target_modules": ["q_proj", "attn"],
                                                                    "use_dora": True}},
    }
    import tomli_w

    files = []
    for name, sections in specs.items():
        files.append(tmp_path / f"{name}.toml")
        files[-1].write_text(tomli_w.dumps(_spec(**sections)))
    script = ("import sys\nfrom loratui.cli import main\ncode = main(['spec', 'validate', *sys.argv[1:]])\n"
              "print(sorted({'torch', 'transformers', 'peft'} & set(sys.modules)))\nsys.exit(code)")
    out = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "LORATUI_HOME": str(home)})
    assert out.returncode == 2 and out.stdout.splitlines()[-1] == "[]", out.stdout + out.stderr
    assert f"ok: {files[0]} is valid (semantic-segmentation, vision model, 240 rows of builtin:shapes-masks)" in out.stdout
    problems = [line.strip() for line in out.stderr.splitlines() if line.startswith("  ")]
    assert problems == [
        "data.mask_column: no column 'segmentation' in builtin:shapes-masks (columns: image, mask)",
        "data.mask_column: row 1 (masks/id7.png): class id 7 not among the labels (allowed: 0-3 for the 4 labels, "
        "or 255 = data.ignore_index)",
        "data.mask_column: row 2 (masks/rgb.png): the mask is RGB, not one channel of class ids (allowed modes: L, P, I)",
        "data.mask_column: row 3 (masks/small.png): the mask is 16x16, its image 32x32 (allowed: the same size)",
        "lora.target_modules: 'query', 'value' match no layer of builtin:tiny-segformer (its layers: classifier, "
        "dwconv, fc1, fc2, k_proj, linear_fuse, o_proj, proj, q_proj, sequence_reduction, v_proj)",
        "lora.use_dora: DoRA does not support the MultiheadAttention layers lora.target_modules names "
        "(decode_head.attn) (allowed: Linear, Embedding and Conv layers, or use_dora = false)",
    ], out.stderr
    assert "4 of 5 specs are not valid" in out.stderr


def test_a_model_that_segments_nothing_or_lacks_its_processor_is_refused(tmp_path):
    from engine.preflight import Report
    from engine.spec import ModelSection
    from engine.tasks.semantic_segmentation.preflight import check_model

    def problems(config: dict) -> Report:
        folder = tmp_path / config["model_type"]
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        report = Report()
        check_model(ModelSection(pretrained=str(folder)), {"train": {}, "lora": {}}, report, offline_ok=False)
        return report

    bert = problems({"model_type": "bert", "architectures": ["BertForMaskedLM"]})
    assert bert.errors == [f"model.pretrained: {tmp_path / 'bert'} (bert encoder, a classification head is added) is "
                           "trained by the sequence-classification task, not semantic-segmentation (allowed: a "
                           "segmentation model, such as beit, data2vec-vision, dpt, mobilenet_v2, mobilevit, "
                           "mobilevitv2, segformer, upernet)"]
    bare = problems({"model_type": "segformer", "architectures": ["SegformerForSemanticSegmentation"]})
    assert bare.errors == [f"model.pretrained: {tmp_path / 'segformer'} has no preprocessor_config.json (its image "
                           "processor, which training and stock inference both use)"]
    assert bare.notes == [f"lora.target_modules not checked before loading: the layer names of {tmp_path / 'segformer'} "
                          "are known once transformers loads it"]
