"""Ingest of a long event stream: found where it left off without rereading, idempotent in any slices, a row
per step."""

import json
import math

from engine.events import offset_after
from loratui.db.library import open_db
from loratui.db.metrics import GPU_FIELDS, last_values, run_keys
from loratui.runs.ingest import catch_up, ingest
from loratui.series import library_series


def _events(steps: int, resume_at: int | None = None) -> list[dict]:
    events = [{"type": "run_started", "total_steps": steps, "resume_step": 0}]
    for step in range(1, steps + 1):
        events.append({"type": "step", "step": step, "total_steps": steps, "loss": 1 / step, "lr": 1e-4,
                       "grad_norm": None if step == 7 else 0.5, "memory": {"kind": "rss", "rss": 1e9 + step}})
        if step == resume_at:  # stopped here, resumed from a checkpoint ten steps back: those are done again
            events += [{"type": "run_stopped", "step": step, "reason": "asked", "adapter_path": None,
                        "checkpoint": "c"}, {"type": "run_started", "total_steps": steps, "resume_step": step - 10}]
            events += [{"type": "step", "step": s, "total_steps": steps, "loss": 2 / s, "lr": 1e-4}
                       for s in range(step - 9, step + 1)]
    events.append({"type": "run_finished", "step": steps, "adapter_path": "a", "final_loss": 1 / steps})
    return [{"v": 1, "seq": seq, "time": 1.7e9 + seq, **event} for seq, event in enumerate(events, 1)]


def _run(db, run_id: str, events: list[dict], tmp_path) -> tuple:
    run_dir = tmp_path / run_id
    run_dir.mkdir()
    lines = [json.dumps(event, separators=(",", ":")) + "\n" for event in events]
    with db.conn:
        db.execute("INSERT INTO runs (id, name, task, dir, spec, status) VALUES (?, ?, 'causal-lm', ?, '', 'running')",
                   [run_id, run_id, str(run_dir)])
    return run_dir, lines


def _library_of(db, run_id: str) -> tuple:
    steps = db.execute("SELECT step, loss, lr, grad_norm, samples_per_s, step_time, memory_rss FROM steps "
                       "WHERE run_id = ? ORDER BY step", [run_id]).fetchall()
    metrics = db.execute("SELECT step, key, value FROM metrics WHERE run_id = ? ORDER BY key, step", [run_id]).fetchall()
    row = db.execute("SELECT status, step, total_steps, last_loss, last_seq, summary FROM runs WHERE id = ?",
                     [run_id]).fetchone()
    return steps, metrics, row


def test_offset_after_bisects_to_the_first_newer_event_past_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(event) + "\n" for event in _events(2_000)]
    lines.insert(900, '{"v": 1, "seq": 9')  # a crash mid-write, ended by the next writer's newline
    lines[900] += "\n"
    path.write_text("".join(lines))
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))
    assert path.stat().st_size > 4 * 64 * 1024  # big enough to be bisected, not scanned
    seqs = [json.loads(line)["seq"] if i != 900 else None for i, line in enumerate(lines)]
    for seq in (0, 1, 500, 899, 900, 901, 1_500, 2_001):
        first_newer = next(i for i, line_seq in enumerate(seqs) if line_seq is not None and line_seq > seq)
        assert offset_after(path, seq) == starts[first_newer]
    assert offset_after(path, 2_002) == offset_after(path, 10**9) == path.stat().st_size
    assert offset_after(tmp_path / "none.jsonl", 5) == 0


def test_ingest_in_slices_equals_ingest_at_once_and_again_changes_nothing(tmp_path):
    db = open_db()
    events = _events(3_000, resume_at=1_200)
    whole_dir, lines = _run(db, "whole", events, tmp_path)
    (whole_dir / "events.jsonl").write_text("".join(lines))
    assert len(ingest(db, whole_dir, "whole")) == len(events)
    assert ingest(db, whole_dir, "whole") == []
    sliced_dir, _ = _run(db, "sliced", events, tmp_path)
    for end in (1, 700, 1_205, 2_400):
        (sliced_dir / "events.jsonl").write_text("".join(lines[:end]))
        ingest(db, sliced_dir, "sliced")
    (sliced_dir / "events.jsonl").write_text("".join(lines))
    assert catch_up(db) == []  # its supervisor is gone: the rest is caught up, and it ended by itself
    assert _library_of(db, "sliced") == _library_of(db, "whole")
    steps, metrics, row = _library_of(db, "whole")
    assert row[:5] == ("finished", 3_000, 3_000, 1 / 3_000, len(events))
    assert [step for step, *_ in steps] == list(range(1, 3_001)) and metrics == []
    by_step = {step: values for step, *values in steps}
    # Redone steps replaced whole (the second try logged no grad norm or memory), the others kept.
    assert by_step[1_195] == [2 / 1_195, 1e-4, None, None, None, None]
    assert by_step[1_189] == [1 / 1_189, 1e-4, 0.5, None, None, 1e9 + 1_189]
    assert by_step[7][2] is None and not any(math.isnan(v) for values in by_step.values() for v in values if v)
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_each_gpu_s_memory_is_a_row_per_step_read_back_by_its_key(tmp_path):
    db = open_db()
    devices = [{"index": index, "allocated": 1e9 * index + 1, "reserved": 2e9, "peak": 3e9} for index in (0, 1)]
    events = [{"v": 1, "seq": step, "time": 1.7e9, "type": "step", "step": step, "total_steps": 2, "loss": 1 / step,
               "memory": {"kind": "cuda", "devices": devices}} for step in (1, 2)]
    run_dir, lines = _run(db, "cuda", events, tmp_path)
    (run_dir / "events.jsonl").write_text("".join(lines))
    ingest(db, run_dir, "cuda")
    assert db.execute("SELECT device, step, allocated FROM gpu_memory ORDER BY device, step").fetchall() == [
        (0, 1, 1), (0, 2, 1), (1, 1, 1e9 + 1), (1, 2, 1e9 + 1)]
    assert run_keys(db, "cuda") == ["loss", *(f"gpu{i}_{field}" for i in (0, 1) for field in GPU_FIELDS)]
    assert last_values(db, "cuda")["gpu1_allocated"] == 1e9 + 1
    assert library_series(db, "cuda", "gpu1_reserved", 1, 2).points() == ((1, 2), (2e9, 2e9))
