"""One owner each: every SQL statement on the runs table lives in loratui/db/runs.py, and every start of a
run (the CLI, the dashboard, the queue) goes through loratui.runs.launch.begin."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = ROOT / "loratui" / "db" / "runs.py"
ON_RUNS = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+runs\b|\[\s*[\"']runs[\"']\s*\]\.|table\(\s*[\"']runs[\"']\s*\)")


def test_no_statement_on_runs_outside_its_owner():
    found = [f"{path.relative_to(ROOT)}:{number}" for folder in ("engine", "loratui", "bench")
             for path in sorted((ROOT / folder).rglob("*.py")) if path != OWNER
             for number, line in enumerate(path.read_text().splitlines(), 1) if ON_RUNS.search(line)]
    assert found == []


def test_the_pattern_sees_each_way_of_writing_one():
    for line in ('db.query("SELECT * FROM runs WHERE id = ?")', 'db["runs"].update(x)', "UPDATE runs SET a = 1",
                 'db.table("runs")', "INSERT INTO runs (id) VALUES (?)"):
        assert ON_RUNS.search(line), line
    assert ON_RUNS.search(OWNER.read_text())


def test_runs_start_only_through_begin():
    launch = ROOT / "loratui" / "runs" / "launch.py"
    calls = re.compile(r"\b(plan_run|prepare)\(")
    found = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "loratui").rglob("*.py")) if path != launch
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if calls.search(line) and "download_and_prepare(" not in line]
    assert found == []
    assert "plan = plan_run(" in launch.read_text() and "    prepare(db, plan)" in launch.read_text()
