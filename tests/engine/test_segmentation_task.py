"""The semantic-segmentation task in-process on the built-ins: what trains, the loss and mean IoU it reaches, an
adapter that stock transformers + peft load to the same metrics, checkpoints that resume exactly, and augmentation
that keeps masks on their images."""

import json

import numpy as np
import pytest
import torch

EVAL_BATCH = 16
STEPS = 40


def _spec(**train):
    from engine.spec import parse_spec
    from engine.spec_template import template_values

    values = template_values("semantic-segmentation")
    values["train"].update(max_steps=STEPS, learning_rate=1e-2, **train)
    return parse_spec(values)


def _evaluate(task, rows) -> dict:
    examples = task.eval_examples(rows)
    outputs = [task.eval_step(task.collate([examples[(0, row)] for row in range(start, min(len(rows), start + EVAL_BATCH))]))
               for start in range(0, len(rows), EVAL_BATCH)]
    return task.metrics({key: torch.cat([o[key] for o in outputs]) for key in outputs[0]})


@pytest.fixture(scope="module")
def trained(builtin_home):
    """The task, trained STEPS steps by hand as the loop would, with its losses and test metrics before and after."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from engine.data import EpochOrder, load_rows
    from engine.tasks import load_task

    threads = torch.get_num_threads()
    # One thread: on two cores shared with other processes, two threads' waiting costs 5x (measured).
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(builtin_home))
        spec = _spec()
        torch.manual_seed(spec.train.seed)
        rows = load_rows(spec.data, spec.train.seed)
        test = load_rows(spec.data.model_copy(update={"split": "test"}), spec.train.seed)
        task = load_task(spec, Accelerator(cpu=True), rows, log=lambda level, message: None)
        before = _evaluate(task, test)
        optimizer = torch.optim.AdamW(task.parameters(), lr=spec.train.learning_rate)
        order = EpochOrder(len(rows), spec.train.seed)
        loader = DataLoader(task.dataset, batch_size=spec.train.batch_size, sampler=order, collate_fn=task.collate)
        losses = []
        while len(losses) < STEPS:
            order.set_epoch(order.epoch + 1 if losses else 0)
            for batch in loader:
                loss = task.loss(batch, generator=None)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss.item())
                if len(losses) == STEPS:
                    break
        yield {"spec": spec, "task": task, "test": test, "before": before, "after": _evaluate(task, test),
               "losses": losses}
    torch.set_num_threads(threads)


def test_only_lora_weights_their_biases_and_the_decode_head_train(trained):
    task = trained["task"]
    assert task.heads == ["decode_head"]
    names = [n for n, p in task.model.named_parameters() if p.requires_grad]
    assert {id(p) for p in task.parameters()} == {id(p) for p in task.model.parameters() if p.requires_grad}
    lora = [n for n in names if "lora_" in n]
    head = [n for n in names if ".decode_head.modules_to_save." in n]
    biases = [n for n in names if n.endswith(("q_proj.base_layer.bias", "v_proj.base_layer.bias"))]
    assert lora and head and biases and sorted(lora + head + biases) == sorted(names)


def test_preflight_knows_the_layers_and_the_adapter_size_as_loaded(trained, builtin_home, monkeypatch):
    from transformers import AutoModelForSemanticSegmentation

    from engine.tasks.semantic_segmentation.preflight import adapter_bytes
    from engine.tasks.semantic_segmentation.source import layers, model_files

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    info = model_files(trained["spec"].model)
    base = AutoModelForSemanticSegmentation.from_pretrained(str(info.folder))
    loaded = {name: "linear" if isinstance(m, torch.nn.Linear) else "conv" for name, m in base.named_modules()
              if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)}
    assert layers(info) == loaded
    saved = trained["task"].lora_state()
    assert adapter_bytes(trained["spec"], info) == 4 * sum(t.numel() for t in saved.values())


def test_gradient_checkpointing_gives_the_same_gradients(trained, builtin_home, monkeypatch):
    from accelerate import Accelerator

    from engine.tasks import load_task

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    task = load_task(_spec(gradient_checkpointing=True), Accelerator(cpu=True), trained["test"],
                     log=lambda level, message: None)
    assert task.model.base_model.model.is_gradient_checkpointing
    batch = task.collate([task.dataset[(0, row)] for row in range(2)])
    grads = []
    for checkpointing in (True, False):
        if not checkpointing:
            task.model.base_model.model.gradient_checkpointing_disable()
        torch.manual_seed(0)  # the same dropout draws
        task.loss(batch, generator=None).backward()
        grads.append([p.grad.clone() for p in task.parameters()])
        task.model.zero_grad()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
    assert any(g.abs().sum() > 0 for g in grads[0])


def test_training_lowers_the_loss_and_raises_mean_iou(trained):
    losses, before, after = trained["losses"], trained["before"], trained["after"]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    assert after["mean_iou"] > before["mean_iou"] + 0.1, (before, after)
    assert set(after) == {"eval_loss", "mean_iou", "pixel_accuracy", "iou_background", "iou_circle", "iou_square",
                          "iou_triangle"}


def test_the_adapter_is_peft_s_own_and_stock_loading_reproduces_the_metrics(trained, tmp_path, monkeypatch,
                                                                             builtin_home):
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    from engine.tasks.semantic_segmentation.predict import predict
    from engine.tasks.semantic_segmentation.trainer import eval_areas, segmentation_metrics

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    task, spec, test = trained["task"], trained["spec"], trained["test"]
    folder = task.save_adapter(tmp_path / "run", {"loratui.steps": str(STEPS), **task.adapter_metadata()})
    assert folder == tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert {k: config[k] for k in ("r", "lora_alpha", "lora_dropout", "bias", "use_dora", "use_rslora",
                                   "init_lora_weights", "modules_to_save", "task_type")} == {
        "r": 8, "lora_alpha": 16.0, "lora_dropout": 0.0, "bias": "lora_only", "use_dora": False, "use_rslora": False,
        "init_lora_weights": True, "modules_to_save": ["decode_head"], "task_type": None}
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    with safe_open(folder / "adapter_model.safetensors", "pt") as weights:
        meta = weights.metadata()
    assert (meta["loratui.steps"], json.loads(meta["loratui.labels"]), meta["loratui.family"]) == (
        str(STEPS), ["background", "circle", "square", "triangle"], "vision")

    # As anyone would load it: the base as it ships, the adapter through peft.
    base = str(task.model.base_model.model.config._name_or_path)
    processor = AutoImageProcessor.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForSemanticSegmentation.from_pretrained(base), folder).eval()
    images, masks = list(test["image"]), [np.asarray(m) for m in test["mask"]]
    inputs = processor(images=images, segmentation_maps=masks, return_tensors="pt")
    with torch.no_grad():
        logits = model(pixel_values=inputs["pixel_values"]).logits
    stock = segmentation_metrics(eval_areas(logits, inputs["labels"], spec.data.ignore_index), task.labels)
    assert stock == pytest.approx(trained["after"], abs=1e-6)

    image = tmp_path / "in.png"
    images[0].save(image)
    mask, coloured = predict("builtin:tiny-segformer", folder, image)
    upsampled = torch.nn.functional.interpolate(logits[:1], size=(64, 64), mode="bilinear", align_corners=False)
    assert mask.shape == (64, 64) and (mask == upsampled.argmax(1)[0].numpy()).all()
    assert coloured.size == (64, 64) and coloured.mode == "RGB"


def test_lora_state_round_trips_and_a_foreign_one_is_refused(trained):
    from engine.errors import LoratuiError

    task = trained["task"]
    state = {k: v.clone() for k, v in task.lora_state().items()}
    assert any(k.startswith("base_model.model.decode_head.batch_norm.running_mean") for k in state)
    with torch.no_grad():
        for p in task.parameters():
            p.add_(1.0)
    task.load_lora_state(state)
    assert all(torch.equal(v, state[k]) for k, v in task.lora_state().items())
    with pytest.raises(LoratuiError, match="checkpoint weights do not fit the model: 1 missing, 0 unexpected"):
        task.load_lora_state({k: v for k, v in list(state.items())[1:]})


def test_crops_and_flips_keep_masks_on_their_images_and_repeat_per_epoch_and_row(builtin_home, monkeypatch):
    from engine.builtin.data import BACKGROUND
    from engine.data import load_rows
    from engine.tasks.semantic_segmentation.trainer import Examples

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    spec = _spec(random_flip=True, crop_scale=0.5)
    examples = Examples(spec, load_rows(spec.data, spec.train.seed).select(range(12)), augment=True)
    sizes = set()
    for epoch in range(2):
        for row in range(12):
            example = examples[(epoch, row)]
            shape = (np.asarray(example["image"]) != BACKGROUND).any(axis=-1)
            assert (shape == (example["mask"] > 0)).all()
            again = examples[(epoch, row)]
            assert again["image"].tobytes() == example["image"].tobytes() and (again["mask"] == example["mask"]).all()
            sizes.add(example["image"].size)
    assert len(sizes) > 4  # the crops differ from row to row and epoch to epoch


def test_reduced_labels_ignore_zero_and_shift_the_rest_down(builtin_home, monkeypatch):
    from types import SimpleNamespace

    from PIL import Image
    from transformers import AutoImageProcessor

    from engine import builtin
    from engine.tasks.semantic_segmentation.trainer import Trainer

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    processor = AutoImageProcessor.from_pretrained(builtin.path("builtin:tiny-segformer"))
    processor.do_reduce_labels = False
    mask = np.repeat(np.array([0, 1, 4, 255], dtype=np.int32), 16)[None, :].repeat(64, axis=0)
    example = {"image": Image.new("RGB", (64, 64)), "mask": mask}
    task = SimpleNamespace(processor=processor, spec=SimpleNamespace(data=SimpleNamespace(reduce_labels=True,
                                                                                           ignore_index=100)))
    labels = Trainer.collate(task, [example])["labels"]
    assert labels[0, 0, ::16].tolist() == [100, 0, 3, 100]


def test_metrics_are_counted_over_the_whole_set_without_ignored_pixels():
    from engine.tasks.semantic_segmentation.trainer import eval_areas, segmentation_metrics

    labels = torch.tensor([[[0, 0, 1, 255]], [[1, 1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1, 2]], [[1, 1, 2, 0]]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float() * 10
    outputs = eval_areas(logits, labels, 255)
    assert outputs["intersection"].tolist() == [[1, 1, 0], [0, 2, 1]]
    metrics = segmentation_metrics(outputs, ["sky", "road", "car park"])
    # Over both: class 0 is 1 hit of 3 (2 labelled, 2 predicted); class 1 is 3 of 4; class 2 is 1 of 2.
    assert metrics["iou_sky"] == pytest.approx(1 / 3) and metrics["iou_road"] == pytest.approx(3 / 4)
    assert metrics["iou_car_park"] == pytest.approx(1 / 2)
    assert metrics["mean_iou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(5 / 7)
