"""The dashboard reads while a run's supervisor writes: no 'database is locked', no lost rows."""

import subprocess
import sys
import textwrap

from engine.home import db_path
from loratui.db.library import open_db
from loratui.library import adapters

ROWS = 1000

WRITER = textwrap.dedent(f"""
    import sys
    from loratui.db.library import open_db

    db = open_db()
    with db.conn:
        db.conn.execute("INSERT INTO runs (id, name, task, dir, spec, status) "
                        "VALUES ('r1', 'r1', 'text-to-image', '/tmp', '', 'running')")
    print("ready", flush=True)
    sys.stdin.readline()
    for step in range({ROWS}):
        with db.conn:  # one transaction per event, as ingestion does
            db.conn.execute("INSERT INTO metrics (run_id, step, key, value) VALUES ('r1', ?, 'loss', ?)",
                            (step, 1.0 / (step + 1)))
""")


def test_reader_never_sees_a_lock_while_another_process_writes(db):
    with db.conn:
        db.conn.execute("INSERT INTO adapters (name, path, sha256, size, format, notes) "
                        "VALUES ('probe', '/p', 'h', 1, 'kohya', 'searchable while metrics stream')")
    writer = subprocess.Popen([sys.executable, "-c", WRITER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    writer.stdin.write("go\n")
    writer.stdin.flush()
    counts = []
    reader = open_db(db_path())
    while writer.poll() is None:  # bounded by the writer's 1,000 inserts
        counts.append(reader.execute("SELECT count(*) FROM metrics WHERE run_id = 'r1'").fetchone()[0])
        assert [r["name"] for r in adapters.search(reader, "metrics")] == ["probe"]
        assert len(adapters.list_adapters(reader)) == 1
    assert writer.returncode == 0, writer.stderr.read()
    assert "locked" not in writer.stderr.read()
    final = reader.execute("SELECT count(*), min(step), max(step) FROM metrics WHERE run_id = 'r1'").fetchone()
    assert final == (ROWS, 0, ROWS - 1)
    assert counts and counts == sorted(counts)  # each read saw a consistent, growing prefix
