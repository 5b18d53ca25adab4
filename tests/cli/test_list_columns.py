"""The CLI's lists keep what people copy whole: `library ls` never cuts a name (piped, or on a terminal wide
enough, COLUMNS included), `runs ls` aligns its columns to the longest id, and counts and figures read well."""

import json
import re

import pytest

from loratui.cli import main
from loratui.columns import columns
from loratui.commands import library as library_command
from loratui.library.render import table
from loratui.words import count, human_bytes, metric

LONG = "reviews-tiny-bert-20261207-124951-step60-with-a-much-longer-name"


def _adapter(db, name: str, n: int, **extra) -> None:
    db["adapters"].insert({"name": name, "path": f"/nowhere/{n}", "sha256": str(n), "size": 1, "format": "peft",
                           "family": "llm", "base_model": "builtin:tiny-bert", "tags": json.dumps(["a", "b"]),
                           **extra})


@pytest.fixture
def db():
    from loratui.db.library import open_db

    library = open_db()
    yield library
    library.close()


@pytest.mark.parametrize("tty", [False, True])
def test_library_ls_never_cuts_a_name(db, capsys, monkeypatch, tty):
    _adapter(db, LONG, 1)
    _adapter(db, "short", 2)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert main(["library", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[1] == LONG and "…" not in "".join(lines)
    assert lines[0].index("STATUS") == lines[1].index("missing") == lines[2].index("missing")


def test_a_narrow_terminal_cuts_tags_and_base_but_not_the_name(db):
    rows = [{"id": 1, "name": LONG, "status": "ok", "family": "llm", "format": "peft", "rank": 4, "alpha": 8.0,
             "base_model": "some-owner/a-very-long-base-model-name-for-testing", "tags": ["one", "two", "three"]}]
    whole = table(rows)
    assert "a-very-long-base-model-name-for-testing" in whole and "one,two,three" in whole
    narrow = table(rows, width=120).splitlines()
    assert LONG in narrow[1] and "…" in narrow[1] and max(map(len, narrow)) <= 120
    assert narrow[0].split() == ["ID", "NAME", "STATUS", "FAMILY", "FORMAT", "RANK", "ALPHA", "BASE", "TAGS"]
    tiny = table(rows, width=40).splitlines()  # too narrow for any line: the name still stays whole
    assert LONG in tiny[1]
    assert library_command.terminal_width() is None  # pytest captures stdout: piped


def test_runs_ls_aligns_to_the_longest_id(db, capsys, tmp_path):
    for run_id, step, loss in (("a", 5, 0.5), ("shapes-demo-20261207-124846-and-a-long-suffix-2", 200, None),
                               ("mid-sized-run", 12, 0.125)):
        db["runs"].insert({"id": run_id, "name": run_id, "task": "text-to-image", "dir": str(tmp_path / run_id),
                           "spec": "", "status": "finished", "step": step, "total_steps": 200, "last_loss": loss,
                           "created": "2026-12-07T12:48:46Z"})
    assert main(["runs", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["RUN", "mid-sized-run",
                                                   "shapes-demo-20261207-124846-and-a-long-suffix-2", "a"]
    for word in ("STATUS", "CREATED"):
        start = lines[0].index(word)
        assert all(line[start - 2: start] == "  " and line[start] != " " for line in lines), lines
    ends = {line.index("STEP") + 4 if i == 0 else line.index("/200") + 4 for i, line in enumerate(lines)}
    assert len(ends) == 1  # STEP is right-aligned


def test_counts_and_figures_read_well():
    assert [count(1, "adapter"), count(2, "adapter"), count(0, "stored copy", "stored copies")] == [
        "1 adapter", "2 adapters", "0 stored copies"]
    assert [human_bytes(512), human_bytes(103_424), human_bytes(710_636_000), human_bytes(3 * 2**30)] == [
        "512 B", "101.0 KiB", "677.7 MiB", "3.0 GiB"]
    assert [metric("memory_rss", 710_636_000), metric("gpu0_peak", 2**31), metric("loss", 0.123456),
            metric("lr", 2e-5), metric("step_time", 0.51234)] == ["677.7 MiB", "2.0 GiB", "0.1235", "2e-05", "0.512 s"]
    assert columns([["A", "B"], ["long-cell", "x"]], right=frozenset({1})) == "A          B\nlong-cell  x"


def test_library_show_prints_memory_in_binary_units(db, capsys):
    db["runs"].insert({"id": "run-1", "name": "r", "task": "text-to-image", "dir": "/r", "spec": "",
                       "status": "finished", "step": 2, "total_steps": 2})
    db["steps"].insert({"run_id": "run-1", "step": 2, "loss": 0.25, "memory_rss": 710_636_000})
    _adapter(db, "one", 1, source_run="run-1")
    assert main(["library", "show", "one"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n    last memory_rss: +677\.7 MiB\n", out) and "e+08" not in out
