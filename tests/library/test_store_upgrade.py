"""A library made by the schema before the content store is upgraded in place, with nothing lost."""

import os
import shutil
from pathlib import Path

from engine.adapters.inspect import content_hash
from engine.home import adapters_dir, db_path
from loratui.cli import main
from loratui.db.library import connect, migrate, migrations, open_db, schema_version
from loratui.library import adapters

STORE = next(version for version, name, _ in migrations() if name == "adapter_store")


def _old_row(db, name: str, path: Path, sha256: str, **extra) -> None:
    row = {"name": name, "path": str(path), "sha256": sha256, "size": 1, "format": "diffusers", **extra}
    with db.conn:
        db.conn.execute(f"INSERT INTO adapters ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        list(row.values()))


def test_old_layouts_move_into_the_store_and_broken_entries_show_as_such(tmp_path, lora_copy, capsys):
    old = connect(db_path())
    assert migrate(old, target=STORE - 1) < STORE
    with old.conn:
        old.conn.execute("INSERT INTO runs (id, name, task, dir, spec, status) VALUES "
                         "('r1', 'r1', 'text-to-image', '/r', '', 'finished')")

    # 1. a run's adapter registered in place: the run folder keeps its file, the entry gets a stored copy
    run_file = lora_copy("sd")
    _old_row(old, "from-run", run_file, content_hash(run_file), source_run="r1", tags='["keep"]')
    # 2. an import the library copied into adapters/<name>/
    copied = adapters_dir() / "copied" / "paper-cut.safetensors"
    copied.parent.mkdir(parents=True)
    shutil.copyfile(lora_copy("kohya"), copied)
    _old_row(old, "copied", copied, content_hash(copied))
    # 3. an import linked into adapters/<name>/ (symlinks to the user's PEFT folder)
    peft = lora_copy("peft")
    (adapters_dir() / "linked").mkdir()
    for file in peft.iterdir():
        (adapters_dir() / "linked" / file.name).symlink_to(file)
    _old_row(old, "linked", adapters_dir() / "linked", content_hash(peft), format="peft")
    # 4. the bug this layout fixes: a resumed run wrote other weights over an entry's file
    overwritten = lora_copy("sdxl")
    _old_row(old, "overwritten", overwritten, "0" * 64)
    # 5. a file deleted behind the library's back
    _old_row(old, "deleted", tmp_path / "gone.safetensors", "1" * 64)
    with old.conn:
        old.conn.execute("INSERT INTO lineage (child, parent, parent_name, method) VALUES (2, 1, 'from-run', 'linear')")
    old.conn.close()

    db = open_db()
    assert schema_version(db) >= STORE
    rows = {row["name"]: row for row in adapters.list_adapters(db)}
    assert {name: row["storage"] for name, row in rows.items()} == {
        "from-run": "store", "copied": "store", "linked": "link", "overwritten": "link", "deleted": "link"}
    for name in ("from-run", "copied"):
        path = Path(rows[name]["path"])
        assert path.parent == adapters_dir() / rows[name]["sha256"] and content_hash(path) == rows[name]["sha256"]
    assert run_file.exists()  # the run's own copy stays for stock loaders
    assert not (adapters_dir() / "copied").exists() and not (adapters_dir() / "linked").exists()
    assert rows["linked"]["path"] == str(peft) and content_hash(peft) == rows["linked"]["sha256"]
    assert rows["overwritten"]["path"] == str(overwritten) and overwritten.exists()  # kept, not deleted
    assert rows["from-run"]["tags"] == ["keep"] and rows["from-run"]["source_run"] == "r1"
    assert adapters.lineage(db, rows["copied"]["id"])["parents"][0]["parent_name"] == "from-run"

    assert main(["library", "check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].split()[0] for line in out[:-1]] == ["missing", "changed"]
    assert out[-1] == "5 adapters checked: 2 missing or changed"

    again = open_db()  # adopting twice changes nothing
    assert {r["name"]: r["path"] for r in adapters.list_adapters(again)} == {n: r["path"] for n, r in rows.items()}
    assert sorted(os.listdir(adapters_dir())) == sorted({rows["from-run"]["sha256"], rows["copied"]["sha256"]})
