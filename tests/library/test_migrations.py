"""Schema files apply in order to an empty library and upgrade one at an older version in place."""

from loratui.db.library import connect, migrate, migrations, open_db, schema_version
from loratui.db.metrics import GPU_FIELDS, last_values, run_keys
from loratui.library import adapters
from loratui.series import decimate, library_series

LATEST = migrations()[-1][0]


def _objects(db) -> set[tuple[str, str]]:
    return set(db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())


def test_empty_library_gets_every_migration(tmp_path):
    db = open_db(tmp_path / "library.db")
    assert schema_version(db) == LATEST
    recorded = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == [version for version, _, _ in migrations()]
    objects = _objects(db)
    assert {("table", "adapters"), ("table", "adapters_fts"), ("trigger", "adapters_fts_insert"),
            ("trigger", "adapters_fts_update"), ("trigger", "adapters_fts_delete")} <= objects
    assert migrate(db) == LATEST  # applying again changes nothing
    assert _objects(db) == objects


def test_library_at_version_1_upgrades_and_keeps_its_adapters(tmp_path):
    path = tmp_path / "library.db"
    old = connect(path)
    assert migrate(old, target=1) == 1
    assert "adapters_fts" not in old.table_names()
    with old.conn:
        old.conn.execute(
            "INSERT INTO adapters (name, path, sha256, size, format, tags, trigger_words, notes) "
            "VALUES ('old-watercolor', '/x.safetensors', 'abc', 10, 'kohya', '[\"painterly\"]', '[\"wtrclr\"]', "
            "'made before search existed')")
        old.conn.execute("INSERT INTO lineage (child, parent_name, method) VALUES (1, 'gone', 'linear')")
    old.conn.close()

    db = open_db(path)
    assert schema_version(db) == LATEST
    row = adapters.resolve(db, "old-watercolor")
    assert row["warnings"] == [] and row["source"] is None  # new columns got their defaults
    for word in ("watercolor", "painterly", "wtrclr", "search"):
        assert [r["name"] for r in adapters.search(db, word)] == ["old-watercolor"], word
    assert adapters.lineage(db, row["id"])["parents"][0]["parent_name"] == "gone"


def test_search_index_follows_inserts_updates_and_deletes(db):
    with db.conn:
        db.conn.execute("INSERT INTO adapters (name, path, sha256, size, format) VALUES ('ink', '/i', 's1', 1, 'kohya')")
    adapters.tag(db, "ink", ["+sumi"])
    adapters.edit(db, "ink", notes="brush strokes", trigger_words=["inkwash"])
    assert [r["name"] for r in adapters.search(db, "sumi brush inkw")] == ["ink"]
    adapters.tag(db, "ink", ["-sumi"])
    assert adapters.search(db, "sumi") == []
    adapters.edit(db, "ink", name="ink-2")
    assert [r["name"] for r in adapters.search(db, "ink")] == ["ink-2"]
    adapters.remove(db, "ink-2")
    assert adapters.search(db, "brush") == []
    assert db.execute("SELECT count(*) FROM adapters_fts").fetchone()[0] == 0


def test_processes_opening_a_new_library_at_once_apply_each_migration_once(tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "library.db"
    # Every process imports first, then waits for the same moment, so they open the library together.
    script = ("import sys, time\nfrom loratui.db.library import open_db\n"
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\nopen_db(sys.argv[1])\n")
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), start], stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, errors
    db = open_db(path)
    assert [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")] == \
        [version for version, _, _ in migrations()]


def test_entries_from_before_tasks_get_theirs_from_their_file_or_family(tmp_path):
    path = tmp_path / "library.db"
    old = connect(path)
    task_version = next(v for v, name, _ in migrations() if name == "adapter_task")
    migrate(old, target=task_version - 1)
    with old.conn:
        for name, family, metadata in (("cls", "text", '{"loratui.task": "sequence-classification"}'),
                                       ("xl", "sdxl", "{}"), ("chat", "llm", "{}"), ("odd", None, "{}")):
            old.conn.execute("INSERT INTO adapters (name, path, sha256, size, format, family, metadata, storage) "
                             "VALUES (?, '/x', ?, 1, 'peft', ?, ?, 'link')", [name, name, family, metadata])
    old.conn.close()
    db = open_db(path)
    assert {r["name"]: r["task"] for r in adapters.list_adapters(db)} == {
        "cls": "sequence-classification", "xl": "text-to-image", "chat": "causal-lm", "odd": None}


def test_step_metrics_from_before_the_step_tables_are_moved_there_and_read_as_before(tmp_path):
    """Rows as ingest wrote them once, one per metric and step, become a row per step (and per GPU and step);
    eval figures stay in metrics; the readers find every key with its values."""
    path = tmp_path / "library.db"
    old = connect(path)
    migrate(old, target=next(v for v, name, _ in migrations() if name == "step_tables") - 1)
    gpu = [(f"gpu{device}_{field}", device * 1e9 + n) for device in (0, 1) for n, field in enumerate(GPU_FIELDS)]
    rows = [("cuda", 300, "loss", 0.25), ("cpu", 100, "eval/accuracy", 0.9), ("cpu", 300, "eval/accuracy", 0.95)]
    for step in range(1, 301):
        rows += [("cpu", step, "loss", 1 / step), ("cpu", step, "lr", 1e-4), ("cpu", step, "memory_rss", 1e9 + step)]
        rows += [("cpu", step, "grad_norm", 0.5)] if step != 7 else []
        rows += [("cuda", step, key, value + step) for key, value in gpu]
    with old.conn:
        for run in ("cpu", "cuda"):
            old.conn.execute("INSERT INTO runs (id, name, task, dir, spec, status) VALUES (?, ?, 'causal-lm', '/r', "
                             "'', 'finished')", [run, run])
        old.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)
    old.conn.close()

    db = open_db(path)
    assert db.execute("SELECT run_id, step, key FROM metrics ORDER BY step").fetchall() == [
        ("cpu", 100, "eval/accuracy"), ("cpu", 300, "eval/accuracy")]
    assert db.execute("SELECT count(*), count(grad_norm), count(samples_per_s) FROM steps WHERE run_id = 'cpu'"
                      ).fetchone() == (300, 299, 0)
    assert db.execute("SELECT * FROM gpu_memory WHERE step = 5").fetchall() == [
        ("cuda", 0, 5, 5, 6, 7), ("cuda", 1, 5, 1e9 + 5, 1e9 + 6, 1e9 + 7)]
    assert run_keys(db, "cpu") == ["loss", "lr", "grad_norm", "memory_rss", "eval/accuracy"]
    assert last_values(db, "cpu") == {"loss": 1 / 300, "lr": 1e-4, "grad_norm": 0.5, "memory_rss": 1e9 + 300,
                                      "eval/accuracy": 0.95}
    assert last_values(db, "cuda") == {"loss": 0.25, **{key: value + 300 for key, value in gpu}}
    for run, key in (("cpu", "loss"), ("cpu", "eval/accuracy"), ("cuda", "gpu1_peak")):
        kept = sorted((step, value) for r, step, k, value in rows if (r, k) == (run, key))
        assert library_series(db, run, key, 1, 300).points() == decimate(*zip(*kept, strict=True), 10_000), key
