"""The text-to-image task in-process: only LoRA weights train, and they stay fp32 under mixed precision."""

import pytest


@pytest.fixture(scope="module")
def bf16_task(builtin_home):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(builtin_home))
        yield _task()


def _task():
    from accelerate import Accelerator

    from engine.data import load_rows
    from engine.spec import parse_spec
    from engine.tasks import load_task

    spec = parse_spec({"name": "t", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
                       "lora": {"train_text_encoder": True},
                       "train": {"max_steps": 1, "resolution": 32, "mixed_precision": "bf16", "cache": False}})
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    rows = load_rows(spec.data, spec.train.seed)
    return load_task(spec, accelerator, rows, log=lambda level, message: None), accelerator


def test_only_lora_parameters_train_and_they_stay_fp32(bf16_task):
    import torch

    task, _ = bf16_task
    trainable = {id(p) for p in task.parameters()}
    names = [(n, p) for module in task.trainable_modules() for n, p in module.named_parameters()]
    assert trainable == {id(p) for n, p in names if "lora_" in n}
    assert all(p.requires_grad == ("lora_" in n) for n, p in names)
    assert all(p.dtype == torch.float32 for n, p in names if "lora_" in n)
    assert task.unet.conv_in.weight.dtype == torch.bfloat16 and task.vae.dtype == torch.bfloat16
    assert [type(m).__name__ for m in task.trainable_modules()] == ["UNet2DConditionModel", "CLIPTextModel"]


def test_a_bf16_step_gives_a_finite_loss_and_fp32_gradients(bf16_task):
    import torch

    task, accelerator = bf16_task
    task.use_prepared(task.trainable_modules())
    batch = task.collate([task.dataset[(0, row)] for row in range(2)])
    generator = torch.Generator().manual_seed(0)
    with accelerator.autocast():
        loss = task.loss(batch, generator)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in task.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 for g in grads)
