"""Folding events into chart series: resume, memory kinds, throughput/ETA, smoothing, thinning, tails."""

import math

from loratui.history import GIB, RunHistory
from loratui.messages import RunProgressed
from loratui.series import decimate
from loratui.watch import LogTail, peek_latest_step
from loratui.widgets.charts import smooth

from .conftest import T0, script_events, step_event


def _history(tmp_path, events):
    history = RunHistory(tmp_path)
    for event in events:
        history.add(event)
    return history


def test_a_resume_replaces_the_steps_redone_after_its_checkpoint(tmp_path):
    events = [{"type": "run_started", "total_steps": 100, "resume_step": 0}]
    events += [step_event(i, i, 100) for i in range(1, 31)]
    events += [{"type": "run_stopped", "step": 30}, {"type": "run_started", "total_steps": 100, "resume_step": 20}]
    events += [step_event(i, i, 100) for i in range(21, 26)]
    history = _history(tmp_path, events)
    assert history.loss.points()[0] == tuple(range(1, 26))
    assert history.memory["rss"].points()[0] == tuple(range(1, 26))
    assert history.ended is None


def test_cuda_memory_is_per_gpu_in_gib_and_rss_otherwise(tmp_path):
    cuda = _history(tmp_path, [step_event(1, 1, 10, memory="cuda", devices=2)])
    assert cuda.memory_kind == "cuda"
    assert sorted(cuda.memory) == ["gpu0 alloc", "gpu0 peak", "gpu0 resv", "gpu1 alloc", "gpu1 peak", "gpu1 resv"]
    assert math.isclose(cuda.memory["gpu1 resv"].points()[1][0], 4.0)
    rss = _history(tmp_path, [step_event(1, 1, 10)])
    assert rss.memory_kind == "rss" and math.isclose(rss.memory["rss"].points()[1][0] * GIB, (0.6 + 0.001) * GIB)


def test_throughput_and_eta_come_from_event_times(tmp_path):
    history = _history(tmp_path, [{"type": "run_started", "total_steps": 100}]
                       + [step_event(i, i, 100) for i in range(1, 41)])
    view = history.view("r", {"status": "running", "total_steps": 100})
    assert math.isclose(view.steps_per_s, 2.0)
    assert math.isclose(view.eta_s, 30.0)
    assert view.step == 40 and view.total_steps == 100
    finished = history.view("r", {"status": "finished", "total_steps": 100})
    assert finished.eta_s is None


def test_sample_paths_are_resolved_against_the_run_folder(tmp_path):
    history = _history(tmp_path, [{"type": "sample_saved", "step": 5, "path": "samples/a.png", "prompt": "p"}])
    assert history.sample["path"] == str(tmp_path / "samples" / "a.png")


def test_a_bad_loss_leaves_no_gap_in_the_smoothed_curve():
    values = [1.0, math.nan, 1.0, 3.0]
    smoothed = smooth(values, 0.5)
    assert smoothed[0] == 1.0 and smoothed[1] == 1.0
    assert 1.0 < smoothed[3] < 3.0
    assert smooth(values, 0.0)[3] == 3.0


def test_thinning_keeps_the_last_point_and_drops_non_finite():
    xs = list(range(1000))
    ys = [float(x) for x in xs]
    ys[10] = math.inf
    tx, ty = decimate(xs, ys, 100)
    assert len(tx) <= 101 and tx[-1] == 999 and math.isfinite(max(ty)) and ty[0] == 0.0


def test_a_newer_progress_message_replaces_a_queued_one_of_the_same_run(tmp_path):
    view_a = RunHistory(tmp_path).view("a", {"status": "running"})
    view_b = RunHistory(tmp_path).view("b", {"status": "running"})
    assert RunProgressed(view_a).can_replace(RunProgressed(view_a))
    assert not RunProgressed(view_a).can_replace(RunProgressed(view_b))


def test_log_tail_reads_only_the_end_then_what_is_appended(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {i:06d}\n" for i in range(20000)))
    tail = LogTail(log)
    assert tail.poll()
    assert tail.lines[-1] == "line 019999" and len(tail.lines) == 300
    with open(log, "a") as handle:
        handle.write("partial")
    assert not tail.poll()
    with open(log, "a") as handle:
        handle.write(" line done\n")
    assert tail.poll() and tail.lines[-1] == "partial line done"


def test_peek_finds_the_latest_step_at_the_end_of_a_long_stream(tmp_path):
    script_events(tmp_path, 3000, total=3000, sample=False)
    latest = peek_latest_step(tmp_path / "events.jsonl")
    assert latest["step"] == 3000 and latest["time"] == T0 + 5 + 3000 * 0.5


def test_a_resume_drops_the_text_samples_made_after_its_checkpoint(tmp_path):
    def said(step: int, text: str) -> dict:
        return {"type": "sample_saved", "step": step, "path": f"samples/step-{step}.txt", "prompt": "hi", "text": text}

    events = [{"type": "run_started", "resume_step": 0}, said(10, "a"), said(20, "b"), said(30, "c"),
              {"type": "run_stopped", "step": 30}, {"type": "run_started", "resume_step": 20}, said(30, "d")]
    view = _history(tmp_path, events).view("r", {"status": "running"})
    assert [(sample["step"], sample["text"]) for sample in view.texts] == [(30, "d"), (20, "b"), (10, "a")]
    assert view.sample_image is None and view.sample["path"] == str(tmp_path / "samples/step-30.txt")
