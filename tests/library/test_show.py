"""`library show`: aligned `key: value` lines, the training run's spec in brief (whole with --spec), and only
the run fields its status makes relevant."""

import json
import re

import pytest

from engine.spec_template import template_toml
from loratui.cli import main
from loratui.library import adapters

SPEC = template_toml()  # builtin:tiny-sd on builtin:shapes, rank 4, 200 steps, 64 px


def _trained(db, lora_copy, status: str, summary: dict, error: str | None = None) -> None:
    """An adapter registered from a run row as the supervisor leaves it, with last metrics and a sample."""
    with db.conn:
        db.conn.execute("INSERT INTO runs (id, name, task, dir, spec, status, step, total_steps, summary, error) "
                        "VALUES ('run-1', 'shapes-demo', 'text-to-image', '/r', ?, ?, 200, 200, ?, ?)",
                        [SPEC, status, json.dumps(summary), error])
        db.conn.executemany("INSERT INTO steps (run_id, step, loss, grad_norm) VALUES ('run-1', ?, ?, ?)",
                            [(190, 0.5, None), (200, 0.25, 0.0142)])
        db.conn.execute("INSERT INTO samples (run_id, step, prompt, path) VALUES ('run-1', 200, 'a cat', '/s.png')")
    adapters.register(db, lora_copy("sd"), name="ink", source_run="run-1")


def _show(capsys, *args) -> str:
    assert main(["library", "show", "ink", *args]) == 0
    return capsys.readouterr().out


def _values_column(lines: list[str]) -> set[int]:
    """Where the values start on `key: value` lines."""
    pattern = re.compile(r" +[^ :][^:]*: +")
    return {match.end() for line in lines if (match := pattern.match(line))}


def test_a_finished_run_shows_aligned_lines_its_spec_in_brief_and_no_stale_reason(db, lora_copy, capsys):
    # A run stopped by SIGTERM, resumed and finished: the stop's reason is still in its summary.
    _trained(db, lora_copy, "finished", {"reason": "SIGTERM received", "checkpoint": "/r/checkpoints/step-150",
                                         "adapter_path": "/r/adapter", "final_loss": 0.25})
    out = _show(capsys)
    lines = out.splitlines()
    assert lines[0] == "#1 ink"
    adapter_and_run = lines[:lines.index("  metadata:")] if "  metadata:" in lines else lines
    assert len(_values_column(adapter_and_run)) == 1, out
    for line in ("  trained by run: run-1 (finished, step 200/200)", "    task: text-to-image",
                 "    model: builtin:tiny-sd", "    data: builtin:shapes", "    rank / alpha: 4 / 4",
                 "    length: 200 steps", "    learning rate: 0.0001 (cosine)", "    resolution: 64",
                 "    final loss: 0.25", "    last grad_norm: 0.0142", "    last loss: 0.25",
                 "    sample step 200: /s.png", "  rank / alpha: 4 / not recorded (loaders use alpha = rank)"):
        assert line in {re.sub(r": +", ": ", text, count=1) for text in lines}, line
    assert "SIGTERM" not in out and "reason" not in out
    assert "library show ink --spec` prints it whole" in out and "[train]" not in out
    assert _show(capsys, "--spec") == SPEC


@pytest.mark.parametrize(("status", "summary", "error", "shown"), [
    ("stopped", {"reason": "SIGTERM received"}, None, "    reason: SIGTERM received"),
    ("failed", {"hint": "lower the batch size", "traceback_path": "/r/traceback.log"}, "out of memory",
     "    error: out of memory"),
    ("crashed", {}, "the training processes exited with code -9 without recording an end",
     "    error: the training processes exited with code -9 without recording an end"),
])
def test_a_run_that_did_not_finish_says_why(db, lora_copy, capsys, status, summary, error, shown):
    _trained(db, lora_copy, status, summary, error)
    lines = {re.sub(r": +", ": ", line, count=1) for line in _show(capsys).splitlines()}
    assert shown in lines
    if status == "failed":
        assert {"    hint: lower the batch size", "    traceback path: /r/traceback.log"} <= lines


def test_spec_of_an_adapter_no_run_trained_is_refused_in_one_line(capsys, lora_copy):
    assert main(["library", "import", str(lora_copy("sd")), "--name", "ink"]) == 0
    capsys.readouterr()
    assert main(["library", "show", "ink", "--spec"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: adapter 'ink' has no spec: no run recorded in this library trained it",
                   "hint: `loratui library show ink` shows what is known about it"]
