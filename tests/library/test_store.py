"""Library entries own their bytes: drift is shown, checked and refused; links are hashed on every use;
removal spares what others use; the adapters' families are checked before anything loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import cli, share_builtins

from engine.home import adapters_dir
from loratui.cli import main
from loratui.library import adapters


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _other_weights(path: Path) -> bytes:
    """The bytes of `path` with one weight changed: a valid LoRA file of the same size with other weights
    (what a resumed run writes over it)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor's data
    return bytes(data)


def _statuses(capsys) -> dict[str, str]:
    code, out, err = cli(capsys, "library", "ls", "--json")
    assert code == 0, err
    return {row["name"]: row["status"] for row in json.loads(out)}


def test_drift_is_shown_checked_and_refused_by_every_use(capsys, lora_copy, tmp_path):
    assert cli(capsys, "library", "import", str(lora_copy("kohya")), "--name", "kept")[0] == 0
    assert cli(capsys, "library", "import", str(lora_copy("sd")), "--name", "gone")[0] == 0
    linked = lora_copy("sdxl")
    assert cli(capsys, "library", "import", str(linked), "--link", "--name", "mine")[0] == 0
    assert _statuses(capsys) == {"kept": "ok", "gone": "ok", "mine": "ok"}
    assert cli(capsys, "library", "check")[0] == 0

    gone = Path(adapters.resolve(_db(), "gone")["path"])
    gone.unlink()
    linked.write_bytes(_other_weights(linked))  # the user rewrote the linked file
    assert _statuses(capsys) == {"kept": "ok", "gone": "missing", "mine": "changed"}

    code, out, _ = cli(capsys, "library", "check")
    assert code == 1
    assert out.splitlines() == [f"#3 mine: changed ({linked})", f"#2 gone: missing ({gone})",
                                "3 adapters checked: 2 missing or changed"]
    code, _, err = cli(capsys, "library", "check", "gone", "--base", "builtin:tiny-sd")
    assert code == 2
    _one_line_error(err, "adapter #2 'gone'", "is missing")

    refusals = [
        ("library", "export", "mine", "--format", "kohya", "--out", str(tmp_path / "out")),
        ("combine", "kept", "gone", "--name", "both"),
        ("merge", "builtin:tiny-sdxl", "--adapter", "mine", "--out", str(tmp_path / "merged")),
        ("gen", "--adapter", "mine", "--prompt", "a red circle", "--steps", "1"),
    ]
    for argv in refusals:
        code, _, err = cli(capsys, *argv)
        assert code == 2, argv
        _one_line_error(err, "mine" if "mine" in argv else "gone", "has changed" if "mine" in argv else "is missing")
    assert not (tmp_path / "out").exists() and not (tmp_path / "merged").exists()
    assert adapters.count_adapters(_db()) == 3


def test_a_link_is_hashed_on_every_use_not_just_stat(capsys, lora_copy, tmp_path):
    linked = lora_copy("kohya")
    assert cli(capsys, "library", "import", str(linked), "--link")[0] == 0
    before = linked.stat()
    linked.write_bytes(_other_weights(linked))  # same size, and the mtime put back: only the hash can tell
    os.utime(linked, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert linked.stat().st_size == before.st_size
    assert _statuses(capsys) == {"paper-cut": "ok"}  # the quick look is fooled...
    code, _, err = cli(capsys, "library", "export", "paper-cut", "--format", "diffusers", "--out", str(tmp_path / "x"))
    assert code == 2  # ...use is not
    _one_line_error(err, "'paper-cut'", "has changed since it was registered")
    assert cli(capsys, "library", "check")[0] == 1


def test_stored_files_are_immune_to_their_source_changing(capsys, lora_copy):
    source = lora_copy("kohya")
    assert cli(capsys, "library", "import", str(source))[0] == 0
    source.write_bytes(_other_weights(source))
    source.unlink()
    assert _statuses(capsys) == {"paper-cut": "ok"}
    assert cli(capsys, "library", "check")[0] == 0


def test_rm_deletes_the_stored_copy_and_leaves_every_other_entry_intact(capsys, lora_copy):
    for name in ("kohya", "sd", "peft"):
        assert cli(capsys, "library", "import", str(lora_copy(name)))[0] == 0
    db = _db()
    peft = adapters.resolve(db, "llama-peft")
    with db.conn:  # an entry that shares the PEFT entry's store folder (a hand-made one: sha256 is unique)
        db.conn.execute("INSERT INTO adapters (name, path, sha256, size, format, storage) VALUES "
                        "('twin', ?, 'x', 1, 'peft', 'store')", [peft["path"]])
    code, out, _ = cli(capsys, "library", "rm", "llama-peft")
    assert code == 0 and "another entry uses its stored copy" in out and Path(peft["path"]).is_dir()
    code, out, _ = cli(capsys, "library", "rm", "paper-cut", "--delete-files")  # the old spelling of the default
    assert code == 0 and out.splitlines()[1].startswith("deleted ")
    with db.conn:
        db.conn.execute("DELETE FROM adapters WHERE name = 'twin'")
    assert cli(capsys, "library", "check")[0] == 0  # what remains hashes to its recorded sha256
    assert len(list(adapters_dir().iterdir())) == 2


def _db():
    from loratui.db.library import open_db

    return open_db()


@pytest.mark.parametrize("argv, message", [
    (["combine", "sd", "xl", "--name", "mix"], "the adapters are of different families (sd is sd1, xl is sdxl)"),
    (["gen", "--adapter", "sd", "--base", "builtin:tiny-sdxl", "--prompt", "x"],
     "adapter 'sd' does not fit builtin:tiny-sdxl: family: adapter is sd1, base is sdxl"),
    (["merge", "builtin:tiny-sd", "--adapter", "xl", "--out", "merged"],
     "adapter 'xl' does not fit builtin:tiny-sd: family: adapter is sdxl, base is sd1"),
    (["gen", "--adapter", "plain", "--base", "builtin:tiny-sdxl", "--prompt", "x"],  # no family recorded
     "adapter 'plain' does not fit builtin:tiny-sdxl: 12 of 56 modules have other shapes (e.g. "),
])
def test_family_mismatch_is_one_line_before_anything_loads(tmp_path, loratui_home, builtin_home, tiny_sd, tiny_sdxl,
                                                           lora_copy, argv, message):
    share_builtins(loratui_home, builtin_home)  # built already: what is measured is the check, not a build
    for name, source in (("sd", "kohya"), ("xl", "sdxl"), ("plain", "sd")):
        assert main(["library", "import", str(lora_copy(source)), "--name", name]) == 0
    script = ("import sys\nfrom loratui.cli import main\ncode = main(sys.argv[1:])\n"
              "print(sorted({'diffusers', 'torch', 'transformers', 'peft'} & set(sys.modules)) or 'nothing loaded')\nsys.exit(code)")
    out = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 2 and out.stdout.strip() == "nothing loaded", out.stderr
    _one_line_error(out.stderr, message)
