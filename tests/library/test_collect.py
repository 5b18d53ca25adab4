"""`library rm` deletes the stored copy no other entry uses (never a --link'ed file), and `library gc` deletes
the stored copies no entry references, saying which and how many bytes."""

import os
import time
from pathlib import Path

from homes import cli

from engine.home import adapters_dir
from loratui.library import adapters, store
from loratui.words import human_bytes


def _age(folder: Path, seconds: float = store.GRACE_S + 5) -> None:
    """Make a store folder look older than the grace a fresh import gets."""
    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then), follow_symlinks=False)


def test_rm_deletes_the_stored_copy_but_never_a_linked_file(capsys, lora_copy, db):
    kept, linked = lora_copy("kohya"), lora_copy("sd")
    assert cli(capsys, "library", "import", str(kept))[0] == 0
    assert cli(capsys, "library", "import", str(linked), "--link", "--name", "mine")[0] == 0
    stored = Path(adapters.resolve(db, "paper-cut")["path"]).parent
    code, out, _ = cli(capsys, "library", "rm", "paper-cut")
    assert code == 0 and out.splitlines() == ["removed #1 paper-cut", f"deleted {stored}"]
    assert not stored.exists() and kept.exists()  # the user's original is theirs
    code, out, _ = cli(capsys, "library", "rm", "mine")
    assert code == 0 and out.strip() == f"removed #2 mine (your file stays: {linked})" and linked.exists()
    assert list(adapters_dir().iterdir()) == []


def test_gc_deletes_only_unreferenced_store_folders_and_reports_bytes(capsys, lora_copy, db):
    for name in ("kohya", "sd"):
        assert cli(capsys, "library", "import", str(lora_copy(name)))[0] == 0
    orphan = Path(adapters.resolve(db, "paper-cut")["path"])
    size = orphan.stat().st_size
    code, out, _ = cli(capsys, "library", "rm", "paper-cut", "--keep-files")
    assert code == 0 and "`loratui library gc` deletes it" in out and orphan.exists()
    used = Path(adapters.resolve(db, "sd")["path"]).parent
    _age(orphan.parent), _age(used)
    crashed = adapters_dir() / ".tmp-half-copied"  # what a copy interrupted by a crash leaves
    crashed.mkdir()
    (crashed / "part.safetensors").write_bytes(b"x" * 100)
    _age(crashed)
    fresh = adapters_dir() / ("f" * 64)  # just placed by an import that has not recorded its entry yet
    fresh.mkdir()
    legacy = adapters_dir() / "old-name"  # a pre-store folder: adopt's business, not gc's
    legacy.mkdir()
    _age(legacy)

    code, out, _ = cli(capsys, "library", "gc", "--dry-run")
    assert code == 0 and out.splitlines()[-1].startswith("2 stored copies no entry uses") and orphan.exists()
    code, out, _ = cli(capsys, "library", "gc")
    lines = out.splitlines()
    assert code == 0 and sorted(lines[:2]) == sorted([f"deleted {orphan.parent.resolve()} ({human_bytes(size)})",
                                                     f"deleted {crashed.resolve()} (100 B)"])
    assert lines[2] == f"2 stored copies deleted, {human_bytes(size + 100)} freed"
    assert not orphan.parent.exists() and not crashed.exists()
    assert used.exists() and fresh.exists() and legacy.exists()
    assert cli(capsys, "library", "check")[0] == 0  # what remains is as registered
    assert cli(capsys, "library", "gc")[1].strip() == "nothing to delete: every stored copy is in use"

