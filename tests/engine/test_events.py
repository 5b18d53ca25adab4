"""events.jsonl: one writer, sequence numbers across resumes, torn lines survived."""

import math

from engine.events import EventTail, EventWriter, parse_event, read_events


def test_seq_continues_after_reopen_and_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("run_started", run_id="r", total_steps=3)
    writer.emit("step", step=1, loss=0.5)
    writer.close()
    with open(path, "a") as handle:
        handle.write('{"v":1,"seq":3,"ty')  # a crash mid-write
    writer = EventWriter(path)
    event = writer.emit("step", step=2, loss=0.4)
    writer.close()
    assert event["seq"] == 3
    assert [e["seq"] for e in read_events(path)] == [1, 2, 3]


def test_tail_returns_only_new_complete_events(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.poll() == []
    writer = EventWriter(path)
    writer.emit("step", step=1, loss=1.0)
    assert [e["step"] for e in tail.poll()] == [1]
    with open(path, "a") as handle:
        handle.write('{"v":1,"seq":2,"time":0,"type":"step","step":2')
    assert tail.poll() == []
    with open(path, "a") as handle:
        handle.write("}\n")
    assert [e["step"] for e in tail.poll()] == [2]
    assert read_events(path, after_seq=1)[0]["step"] == 2


def test_a_diverged_loss_reads_back_as_written_and_a_torn_line_as_none(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("step", step=1, loss=math.nan, grad_norm=math.inf)
    writer.emit("step", step=2, loss=0.5)
    writer.close()
    first, second = read_events(path)
    assert math.isnan(first["loss"]) and first["grad_norm"] == math.inf and second["loss"] == 0.5
    assert parse_event(b'{"v":1,"seq":3,"ty') is None and parse_event(b'{"seq":\xff}') is None
