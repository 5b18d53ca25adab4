"""Text-to-image's validation loss, in-process: fixed noise and timesteps give the same figure at every
evaluation of the same weights, whatever the batch size, and another figure once the weights change."""

import pytest


@pytest.fixture(scope="module")
def evaluated(builtin_home, tmp_path_factory):
    """(task, accelerator, held-out rows, evaluate(batch_size) -> eval_loss)."""
    from accelerate import Accelerator

    from engine.checkpoint import Position
    from engine.data import load_rows
    from engine.evaluation import Evaluation, eval_split
    from engine.spec import parse_spec
    from engine.tasks import load_task

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(builtin_home))
        spec = parse_spec({"name": "t", "model": {"pretrained": "builtin:tiny-sd"},
                           "data": {"source": "builtin:shapes"},
                           "train": {"max_steps": 1, "resolution": 32, "batch_size": 4, "random_flip": True,
                                     "cache": False},
                           "eval": {"split_ratio": 0.125}})
        accelerator = Accelerator(cpu=True)
        rows, held = eval_split(spec, load_rows(spec.data, spec.train.seed))
        task = load_task(spec, accelerator, rows, log=lambda level, message: None)
        task.use_prepared(task.trainable_modules())
        best = tmp_path_factory.mktemp("best") / "best"

        def evaluate(batch_size: int) -> float:
            tuned = spec.model_copy(update={"eval": spec.eval.model_copy(update={"batch_size": batch_size})})
            events = []
            evaluation = Evaluation(tuned, task, held, accelerator, lambda kind, **fields: events.append(fields),
                                    best, save=None)
            metrics = evaluation.run(Position(step=1))
            assert events[0]["metrics"] == metrics
            return metrics["eval_loss"]

        yield task, held, evaluate


def test_the_same_weights_give_the_same_validation_loss_at_any_batch_size(evaluated):
    task, held, evaluate = evaluated
    assert len(held) == 6
    first = evaluate(4)
    assert evaluate(4) == first  # the noise and timesteps are drawn again, the same
    assert evaluate(1) == pytest.approx(first, rel=1e-5)  # seeded by row, not by batch
    assert 0 < first < 10


def test_changed_weights_change_the_validation_loss(evaluated):
    import torch

    task, _, evaluate = evaluated
    before = evaluate(4)
    lora = [p for n, p in task.unet.named_parameters() if "lora_B" in n]
    saved = [p.detach().clone() for p in lora]
    try:
        with torch.no_grad():
            for p in lora:
                p.add_(0.05)
        assert evaluate(4) != before
    finally:
        with torch.no_grad():
            for p, value in zip(lora, saved, strict=True):
                p.copy_(value)
    assert evaluate(4) == before
