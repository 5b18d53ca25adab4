"""register() and friends: placement modes, dedup by sha256, lineage, resolve by id or name, removal."""

import os
from pathlib import Path

import pytest

from engine.errors import LoratuiError
from engine.home import adapters_dir
from loratui.library import adapters


def test_copy_is_content_addressed_and_read_only_link_stays_put(db, lora_copy):
    source = lora_copy("kohya")
    row = adapters.register(db, source)
    assert row["path"] == str(adapters_dir() / row["sha256"] / "paper-cut.safetensors")
    assert row["storage"] == "store" and not os.access(row["path"], os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(row["path"]).st_mode & 0o777) == "0o444"
    assert source.exists()  # the user's file is left where it was

    peft = lora_copy("peft")
    stored = adapters.register(db, peft, name="peft")
    assert stored["path"] == str(adapters_dir() / stored["sha256"])
    assert sorted(p.name for p in Path(stored["path"]).iterdir()) == ["adapter_config.json",
                                                                      "adapter_model.safetensors"]

    other = lora_copy("sd")
    linked = adapters.register(db, other, mode="link", name="linked")
    assert (linked["path"], linked["storage"]) == (str(other), "link")
    assert sorted(p.name for p in adapters_dir().iterdir()) == sorted([row["sha256"], stored["sha256"]])


def test_same_bytes_are_one_adapter_stored_once(db, lora_copy, tmp_path):
    first = adapters.register(db, lora_copy("kohya"), mode="copy")
    moved = tmp_path / "renamed.safetensors"
    moved.write_bytes(lora_copy("kohya").read_bytes())
    again = adapters.register(db, moved, name="other-name", mode="copy")
    assert again["id"] == first["id"] and again["name"] == "paper-cut"
    assert db.execute("SELECT count(*) FROM adapters").fetchone()[0] == 1
    assert [p.name for p in adapters_dir().iterdir()] == [first["sha256"]]


def test_removed_entry_re_registered_reuses_its_stored_bytes(db, lora_copy):
    first = adapters.register(db, lora_copy("kohya"))
    adapters.remove(db, "paper-cut")  # the stored file stays
    again = adapters.register(db, lora_copy("kohya"), name="back")
    assert again["path"] == first["path"] and [p.name for p in adapters_dir().iterdir()] == [first["sha256"]]


def test_default_names_do_not_collide(db, lora_copy, tmp_path):
    from safetensors.torch import load_file, save_file

    first = adapters.register(db, lora_copy("kohya"))
    tensors = load_file(lora_copy("kohya"))
    tensors[next(iter(tensors))] *= 2
    other = tmp_path / "paper-cut.safetensors"
    save_file(tensors, other)
    assert adapters.register(db, other)["name"] == "paper-cut-2"
    with pytest.raises(LoratuiError, match="already exists"):
        adapters.edit(db, "paper-cut-2", name=first["name"])


def test_lineage_and_source_run(db, lora_copy):
    a = adapters.register(db, lora_copy("sd"), name="a")
    adapters.register(db, lora_copy("kohya"), name="b")
    with db.conn:
        db.conn.execute("INSERT INTO runs (id, name, task, dir, spec, status, summary) VALUES "
                        "('run-1', 'combo', 'text-to-image', '/r', '[train]\nsteps = 2', 'finished', "
                        "'{\"loss\": 0.1}')")
        db.conn.executemany("INSERT INTO steps (run_id, step, loss, lr) VALUES ('run-1', ?, ?, ?)",
                            [(1, 0.5, 1e-4), (2, 0.25, None)])
        db.conn.execute("INSERT INTO samples (run_id, step, prompt, path) VALUES ('run-1', 2, 'a cat', '/s.png')")
    child = adapters.register(
        db, lora_copy("sdxl"), name="mix", source_run="run-1",
        lineage=[{"parent": a["id"], "weight": 0.7, "method": "linear"},
                 {"parent": "b", "weight": 0.3, "method": "linear", "params": {"density": 0.5}}])
    info = adapters.details(db, "mix")
    assert [(p["parent_name"], p["weight"]) for p in info["lineage"]["parents"]] == [("a", 0.7), ("b", 0.3)]
    assert info["lineage"]["parents"][1]["params"] == {"density": 0.5}
    assert info["run"]["summary"] == {"loss": 0.1}
    assert info["run"]["final_metrics"] == {"loss": 0.25, "lr": 1e-4}
    assert info["run"]["samples"] == [{"step": 2, "prompt": "a cat", "path": "/s.png", "text": None}]
    from loratui.library.render import details

    text = details(info)
    shown = {" ".join(line.split()) for line in text.splitlines()}  # values are aligned: spacing varies
    assert {"made from: #1 a x 0.7 by linear", "last loss: 0.25", "sample step 2: /s.png"} <= shown
    assert "spec: `loratui library show mix --spec` prints it whole" in shown
    assert adapters.lineage(db, a["id"])["children"] == [{"id": child["id"], "name": "mix", "weight": 0.7,
                                                          "method": "linear"}]
    adapters.remove(db, "a")
    parents = adapters.lineage(db, child["id"])["parents"]
    assert parents[0]["parent"] is None and parents[0]["parent_name"] == "a"  # kept by name


def test_unknown_parent_or_run_writes_nothing(db, lora_copy):
    with pytest.raises(LoratuiError, match="unknown adapter '99'"):
        adapters.register(db, lora_copy("sd"), mode="copy", lineage=[{"parent": 99, "method": "linear"}])
    with pytest.raises(LoratuiError, match="unknown run"):
        adapters.register(db, lora_copy("sd"), mode="copy", source_run="nope")
    assert db.execute("SELECT count(*) FROM adapters").fetchone()[0] == 0
    assert not any(adapters_dir().iterdir())


def test_resolve_by_id_hash_id_and_name_with_hint(db, lora_copy):
    row = adapters.register(db, lora_copy("kohya"))
    assert adapters.resolve(db, row["id"])["name"] == "paper-cut"
    assert adapters.resolve(db, f"#{row['id']}")["name"] == "paper-cut"
    assert adapters.resolve(db, "paper-cut")["id"] == row["id"]
    with pytest.raises(LoratuiError, match="unknown adapter 'paper-cat'") as caught:
        adapters.resolve(db, "paper-cat")
    assert "paper-cut" in caught.value.hint


def test_remove_keeps_or_deletes_stored_files_never_a_linked_one(db, lora_copy):
    source = lora_copy("kohya")
    row = adapters.register(db, source)
    adapters.remove(db, "paper-cut")
    assert Path(row["path"]).exists()

    adapters.register(db, source)
    _, deleted = adapters.remove(db, "paper-cut", delete_files=True)
    assert deleted == [str(Path(row["path"]).parent)] and not Path(row["path"]).exists()
    assert source.exists()  # the user's original was never the library's

    target = lora_copy("peft")
    adapters.register(db, target, mode="link", name="ln")
    assert adapters.remove(db, "ln", delete_files=True)[1] == []
    assert (target / "adapter_model.safetensors").exists()  # a link's target is not the library's to delete


def test_list_filters_and_search(db, lora_copy):
    adapters.register(db, lora_copy("kohya"), tags=["paper", "craft"])
    adapters.register(db, lora_copy("sdxl"), name="xl-thing", base_model="builtin:tiny-sdxl")
    adapters.register(db, lora_copy("peft"), name="llama-chat")
    assert [r["name"] for r in adapters.list_adapters(db)] == ["llama-chat", "xl-thing", "paper-cut"]
    assert [r["name"] for r in adapters.list_adapters(db, family="sdxl")] == ["xl-thing"]
    assert [r["name"] for r in adapters.list_adapters(db, tag="craft")] == ["paper-cut"]
    assert [r["name"] for r in adapters.list_adapters(db, base="builtin:tiny-sdxl")] == ["xl-thing"]
    assert [r["name"] for r in adapters.search(db, "layered")] == ["paper-cut"]  # a trigger word
    assert [r["name"] for r in adapters.search(db, "llam")] == ["llama-chat"]
    assert adapters.search(db, "paper", family="llm") == []
    assert "metadata" not in adapters.list_adapters(db)[0]
