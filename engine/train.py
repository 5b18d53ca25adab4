"""The training loop, read top to bottom. Started as `accelerate launch ... -m engine.train RUN_DIR`.

The run folder holds the validated spec; everything task-specific (models, LoRA, loss, saving) is behind
engine.tasks. Only the main process writes events. The loss is read from the device only when a step
event is due; the one per-step host sync is a single small tensor on which all processes agree whether
the update was finite and whether to stop, which must be known before the weights are touched.
"""

import argparse
import math
import os
import re
import sys
import time

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from engine import checkpoint, faults, fsdp, memory
from engine.checkpoint import Position
from engine.data import EpochOrder, load_rows
from engine.distributed import check_launch, launched_rank, lost_peer, make_accelerator
from engine.errors import LoratuiError, first_line, save_traceback
from engine.evaluation import Evaluation, eval_split
from engine.events import EventWriter
from engine.liveness import has_ended
from engine.optimization import make_optimizer, schedule
from engine.rundir import RunDir
from engine.spec import load_spec
from engine.stopping import StopRequest
from engine.tasks import load_task


class NonFiniteLoss(LoratuiError):
    pass


def train(spec, run: RunDir, accelerator, emit, stop: StopRequest, resume: str, position: Position) -> None:
    t = spec.train
    n = accelerator.num_processes
    log = _logger(emit)
    if t.allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    set_seed(t.seed)  # the LoRA initialisation; every later random draw has its own seeded generator

    # Data and task: rows skipped by preflight (bad images) never reach the loader.
    rows = load_rows(spec.data, t.seed)
    skip = set(run.skip_rows())
    if skip:
        rows = rows.select([i for i in range(len(rows)) if i not in skip])
    rows, eval_rows = eval_split(spec, rows)
    task = load_task(spec, accelerator, rows, log)
    params = task.parameters()
    evaluation = None if eval_rows is None else Evaluation(
        spec, task, eval_rows, accelerator, emit, run.path / "best",
        lambda folder, step: task.save_adapter(folder, adapter_metadata(spec, task, run, step)))

    scale = t.gradient_accumulation_steps * t.batch_size * n if t.scale_lr else 1
    optimizer = make_optimizer(params, t.learning_rate * scale, t)
    # A task may drop or pack rows; one whose dataset has lengths gets batches of similar lengths.
    # Grouped per process batch, not per step: the order is then the same for any process count (elastic resume).
    order = EpochOrder(len(task.dataset), t.seed, getattr(task.dataset, "lengths", None), t.batch_size)
    # Workers live across epochs: a small dataset would otherwise fork them again every few steps.
    loader = DataLoader(task.dataset, batch_size=t.batch_size, sampler=order, collate_fn=task.collate,
                        num_workers=t.dataloader_num_workers, persistent_workers=t.dataloader_num_workers > 0,
                        generator=torch.Generator().manual_seed(t.seed))
    *models, optimizer, loader = accelerator.prepare(*task.trainable_modules(), optimizer, loader)
    if t.compile:  # the forward only; saving reads the uncompiled modules
        # Batches that vary in length (the task says) get one graph for any length, not one per length seen.
        dynamic = True if task.varying_lengths else None
        models = [torch.compile(m, dynamic=dynamic) for m in models]
    task.use_prepared(models)
    params = task.parameters()  # FSDP replaces the parameters with sharded ones; clipping needs those
    per_micro = t.batch_size * n  # samples of the epoch one micro-step takes, over all processes
    epoch_samples = len(loader) * per_micro  # with accelerate's even batches, the last one topped up

    found = checkpoint.find(run, resume, log, accelerator)
    restored = checkpoint.load(found, accelerator, task, optimizer, t.batch_size) if found else None
    if restored:
        position.__dict__.update(restored.position.__dict__)
        log("info", f"resumed from {found.name}: step {position.step}, epoch {position.epoch}, sample "
                    f"{position.samples}" + (f" (saved by {restored.processes} process{'es' if restored.processes > 1 else ''}, "
                                               f"now {n})" if restored.processes != n else ""))
    elif resume:
        log("info", "no complete checkpoint to resume from: starting at step 0")
    steps_per_epoch = math.ceil(len(loader) / t.gradient_accumulation_steps)  # an epoch's end always steps
    left_in_epoch = max(0, steps_per_epoch - math.ceil(position.samples / per_micro / t.gradient_accumulation_steps))
    total = t.max_steps or position.step + (t.num_epochs - position.epoch - 1) * steps_per_epoch + left_in_epoch
    scheduler = schedule(t, optimizer, total, restored.scheduler if restored else None)
    emit("run_started", run_id=run.run_id, name=spec.name, task=spec.task, total_steps=total, num_processes=n,
         device=str(accelerator.device), mixed_precision=accelerator.mixed_precision, resume_step=position.step)
    if spec.output.report_to != "none":
        accelerator.init_trackers(spec.name, config={k: v for k, v in t.model_dump().items()
                                                     if isinstance(v, int | float | str | bool)})

    if evaluation and position.step == 0:
        evaluation.run(position)  # the base model's figures, for the final ones to be compared with
    if task.sample_schedule and position.step == 0 and getattr(task, "samples_base", False):
        _sample(task, run, 0, accelerator, emit)  # the base model's samples (the task says step 0's are)
    generator = torch.Generator(accelerator.device)
    window = _Window()
    update_loss = torch.zeros((), device=accelerator.device)
    checkpointed = position.step if restored else None  # the step of the newest checkpoint this run has
    micro = 0
    stopping = False
    while position.step < total and not stopping:
        if position.samples >= epoch_samples:
            position.epoch, position.samples = position.epoch + 1, 0
        loader.set_epoch(position.epoch)
        order.skip = position.samples  # a resumed epoch continues at the sample where it stopped
        for batch in loader:
            # Each micro-batch draws its noise from a generator seeded by (seed, step, micro-step, process).
            generator.manual_seed(step_seed(t.seed, position.step, micro, accelerator.process_index))
            with accelerator.accumulate(*models):
                loss = task.loss(batch, generator)
                if faults.due("NAN_AT_STEP", position.step + 1):
                    loss = loss * float("nan")
                if faults.due("OOM_AT_STEP", position.step + 1):
                    raise torch.OutOfMemoryError("CUDA out of memory (injected by LORATUI_FAULT_OOM_AT_STEP)")
                accelerator.backward(loss)
            position.samples += per_micro
            micro += 1
            update_loss += loss.detach()
            if not accelerator.sync_gradients:
                continue

            # One optimizer update.
            grad_norm = accelerator.clip_grad_norm_(params, t.max_grad_norm or math.inf)
            finite, stopping = _agree(accelerator, update_loss, grad_norm, stop)
            if finite:
                optimizer.step()
                window.add(update_loss / micro)
            else:
                position.nan_skipped += 1
                if accelerator.scaler is not None:
                    accelerator.scaler.update()  # unscale_ ran; the scaler must close this step
                if t.on_nan == "stop" or position.nan_skipped > t.nan_skip_limit:
                    raise NonFiniteLoss(
                        f"loss is NaN or infinite at step {position.step + 1}",
                        hint='the last checkpoint is kept; lower train.learning_rate, or set train.on_nan = "skip"'
                        if t.on_nan == "stop" else f"{position.nan_skipped} steps skipped, more than "
                        f"train.nan_skip_limit ({t.nan_skip_limit}); lower train.learning_rate")
                log("warning", f"loss is NaN or infinite at step {position.step + 1}: update skipped "
                               f"({position.nan_skipped} of at most {t.nan_skip_limit})")
            if not accelerator.optimizer_step_was_skipped:  # an fp16 overflow: the schedule waits too
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            position.step += 1
            micro = 0
            update_loss.zero_()

            if position.step % t.log_every_steps == 0 or position.step == total:
                _emit_step(emit, accelerator, window, position, total, scheduler, grad_norm, t, n)
            if t.checkpointing_steps and position.step % t.checkpointing_steps == 0:
                _checkpoint(run, position, accelerator, task, optimizer, scheduler, spec, emit)
                checkpointed = position.step
            if task.sample_schedule and _due(task.sample_schedule[0], position.step):
                _sample(task, run, position.step, accelerator, emit)
            if evaluation and _due(spec.eval.every_steps, position.step) and position.step < total:
                evaluation.run(position)
            stopping = stopping or faults.due("STOP_AFTER_STEP", position.step)
            faults.kill_if_due(f"KILL_RANK{accelerator.process_index}_AFTER_STEP", position.step)
            faults.hang_if_due(f"HANG_RANK{accelerator.process_index}_AFTER_STEP", position.step)
            if stopping or position.step >= total:
                break
        else:
            position.epoch, position.samples = position.epoch + 1, 0
            if task.sample_schedule and _due(task.sample_schedule[1], position.epoch):
                _sample(task, run, position.step, accelerator, emit)
            if evaluation and _due(spec.eval.every_epochs, position.epoch) and position.step < total:
                evaluation.run(position)

    # Stopped or finished: a checkpoint (unless this step has one; always on a stop, to resume from) and the adapter.
    adapter = None
    if position.step > 0:
        # Decided from what this run did, never from the folder: other machines' processes cannot see it.
        if (t.checkpointing_steps or position.step < total) and checkpointed != position.step:
            _checkpoint(run, position, accelerator, task, optimizer, scheduler, spec, emit)
        adapter = _save_adapter(task, run, position, spec, accelerator)
    if position.step < total:
        latest = run.latest_checkpoint()
        reason = stop.reason or "a stop was requested of another training process"
        emit("run_stopped", sync=True, step=position.step, reason=reason, adapter_path=adapter and str(adapter),
             checkpoint=latest and str(latest))
        return
    if task.sample_schedule and not _due(task.sample_schedule[0], position.step):
        _sample(task, run, position.step, accelerator, emit)
    metrics = evaluation.run(position) if evaluation else None
    if spec.output.push_to_hub and accelerator.is_main_process:
        _push(run, spec, adapter, log)
    if spec.output.report_to != "none":
        accelerator.end_training()
    emit("run_finished", sync=True, step=position.step, adapter_path=str(adapter), final_loss=window.last,
         metrics=metrics, base_metrics=evaluation.base if evaluation else None)


def step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """The seed of the generator a micro-batch draws its latent sample, noise and timesteps from."""
    return (seed * 1_000_003 + step) * 4096 + micro * 64 + rank


def _agree(accelerator, update_loss, grad_norm, stop: StopRequest) -> tuple[bool, bool]:
    """(update is finite, stop now), the same on every process."""
    bad = ~torch.isfinite(update_loss)
    if accelerator.scaler is None:  # under fp16 an inf gradient is the scaler's business, not ours
        bad = bad | ~torch.isfinite(grad_norm)
    flags = torch.stack([bad.float(), torch.tensor(float(stop.poll()), device=bad.device)])
    if accelerator.num_processes > 1:
        flags = accelerator.reduce(flags, reduction="sum")
    bad_count, stop_count = flags.tolist()
    return bad_count == 0, stop_count > 0


class _Window:
    """Losses and time since the last step event, kept on the device until the event is due."""

    def __init__(self) -> None:
        self.losses: list = []
        self.start = time.perf_counter()
        self.last = None

    def add(self, loss) -> None:
        self.losses.append(loss)

    def take(self, accelerator) -> tuple[float | None, int, float]:
        steps, elapsed = len(self.losses), time.perf_counter() - self.start
        mean = torch.stack(self.losses).mean() if self.losses else torch.tensor(float("nan"), device=accelerator.device)
        if accelerator.num_processes > 1:
            mean = accelerator.reduce(mean, reduction="mean")
        value = mean.item()
        self.last = value if steps else self.last
        self.losses, self.start = [], time.perf_counter()
        return (value if steps else None), steps, elapsed


def _emit_step(emit, accelerator, window: _Window, position: Position, total: int, scheduler, grad_norm, t, n):
    loss, steps, elapsed = window.take(accelerator)
    mem = memory.snapshot(accelerator)
    lr = scheduler.get_last_lr()[0]
    norm = grad_norm.item()
    fields = {"step": position.step, "total_steps": total, "epoch": position.epoch, "loss": loss, "lr": lr,
              "grad_norm": norm if math.isfinite(norm) else None,
              "samples_per_s": steps * t.batch_size * t.gradient_accumulation_steps * n / elapsed if steps else None,
              "step_time": elapsed / steps if steps else None, "memory": mem}
    emit("step", **fields)
    if accelerator.trackers:
        accelerator.log({k: v for k, v in fields.items() if isinstance(v, float)}, step=position.step)


def _checkpoint(run, position, accelerator, task, optimizer, scheduler, spec, emit) -> None:
    path = checkpoint.save(run, position, accelerator, task, optimizer, scheduler,
                           spec.train.checkpoints_total_limit, spec.hash())
    emit("checkpoint_saved", step=position.step, path=str(path), sync=True)


def _due(every: int, count: int) -> bool:
    return bool(every) and count % every == 0


def _sample(task, run, step, accelerator, emit) -> None:
    # A sharded model generates on every process (each gathers the weights); the main one writes.
    if accelerator.is_main_process or fsdp.sharded(accelerator):
        for sample in task.sample(step, run.samples):
            text = {} if sample.text is None else {"text": sample.text}
            emit("sample_saved", step=step, path=str(sample.path), prompt=sample.prompt, **text)
    accelerator.wait_for_everyone()


def _save_adapter(task, run, position, spec, accelerator):
    path = None
    if accelerator.is_main_process or fsdp.sharded(accelerator):  # sharded weights are gathered from all
        path = task.save_adapter(run.path, adapter_metadata(spec, task, run, position.step))
    accelerator.wait_for_everyone()
    return path if accelerator.is_main_process else None


def adapter_metadata(spec, task, run, step: int) -> dict[str, str]:
    return {"loratui.base_model": spec.model.pretrained, "loratui.rank": str(spec.lora.rank),
            "loratui.alpha": str(spec.lora.alpha), "loratui.steps": str(step), "loratui.spec_hash": spec.hash(),
            "loratui.run_id": run.run_id, "loratui.task": spec.task, "loratui.dataset": spec.data.source,
            **task.adapter_metadata()}


def _push(run, spec, adapter, log) -> None:
    from engine.hub import push_adapter

    try:
        log("info", f"pushed to the Hub: {push_adapter(run, spec, adapter)}")
    except Exception as exc:  # the adapter is safe on disk; a failed upload must not fail the run
        log("error", f"push_to_hub failed: {first_line(exc)}")


def _logger(emit):
    return lambda level, message: emit("log", level=level, message=message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="one loratui training run")
    parser.add_argument("run_dir", help="the run folder, holding spec.toml")
    parser.add_argument("--resume", default=None, help='"latest" or a checkpoint folder (default: the spec\'s)')
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    stop = StopRequest.install()
    try:
        spec = load_spec(run.spec)  # checked before launch, unless someone launched this module by hand
        accelerator = make_accelerator(spec, str(run.path))
        check_launch(accelerator)
    except LoratuiError as exc:
        # Before any state can be trusted: only the process the launcher numbered 0 records the failure.
        if launched_rank() == 0:
            events = EventWriter(run.events)
            events.emit("run_failed", step=0, reason=exc.message, hint=exc.hint, traceback_path=None)
            events.sync()
            events.close()
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    run.write_pid(accelerator.process_index)
    events = EventWriter(run.events) if accelerator.is_main_process else None

    def emit(kind: str, sync: bool = False, **fields) -> None:
        if events is not None:
            events.emit(kind, **fields)
            if sync:
                events.sync()

    position = Position()
    resume = spec.train.resume_from_checkpoint if args.resume is None else args.resume
    try:
        train(spec, run, accelerator, emit, stop, resume, position)
        return 0
    except LoratuiError as exc:
        emit("run_failed", sync=True, step=position.step, reason=exc.message, hint=exc.hint, traceback_path=None)
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    except torch.OutOfMemoryError as exc:
        emit("run_failed", sync=True, step=position.step, reason=f"CUDA out of memory at step {position.step + 1}",
             hint=memory.oom_hints(spec), traceback_path=_traceback(run, accelerator, exc))
        return 1
    except Exception as exc:
        if lost_peer(exc):
            dead = ", ".join(f"rank {rank} (pid {pid})" for rank, pid in run.worker_ranks().items() if has_ended(pid))
            reason = f"training process {dead} died" if dead else \
                f"lost contact with another training process ({_said(exc)})"
            emit("run_failed", sync=True, step=position.step, reason=f"{reason} at step {position.step}",
                 hint=f"a process that dies or hangs for launch.timeout_s ({spec.launch.timeout_s} s) fails the run; "
                      f"see {run.log}", traceback_path=None)
            return 1
        path = _traceback(run, accelerator, exc)
        emit("run_failed", sync=True, step=position.step, reason=f"{type(exc).__name__}: {exc}".splitlines()[0],
             hint=f"this is a bug in loratui or a library; the traceback is in {path}", traceback_path=str(path))
        return 1
    finally:
        if events is not None:
            events.close()


def _said(exc: BaseException) -> str:
    """The first line of a library's error, without the source location gloo and NCCL put first."""
    return re.sub(r"^\[[^\]]*\]\s*", "", first_line(exc))[:160]


def _traceback(run: RunDir, accelerator, error: BaseException) -> str:
    return save_traceback(error, run.path / f"traceback-rank{accelerator.process_index}.log")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # events.jsonl is the run's record; library chatter (dtype notices, progress bars) stays out of run.log.
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    from engine.quiet import hide_library_deprecations

    hide_library_deprecations()
    sys.exit(main())
