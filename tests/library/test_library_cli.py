"""`loratui library ...`: every command, by id and by name, in text and JSON."""

import json
import re
from pathlib import Path

from homes import cli


def _json(capsys, *args):
    code, out, err = cli(capsys, "library", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_import_ls_show_search(capsys, lora_copy):
    code, out, _ = cli(capsys, "library", "import", str(lora_copy("kohya")), "--tag", "paper")
    assert code == 0 and out.startswith("imported #1 paper-cut (kohya, sd1, rank 4, alpha 2)")
    code, out, _ = cli(capsys, "library", "import", str(lora_copy("kohya")))
    assert out.startswith("already in the library: #1 paper-cut")
    assert cli(capsys, "library", "import", str(lora_copy("sdxl")), "--name", "xl", "--copy")[0] == 0

    code, out, _ = cli(capsys, "library", "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "FAMILY", "FORMAT", "RANK", "ALPHA", "BASE", "TAGS"]
    assert lines[1].split()[:5] == ["2", "xl", "ok", "sdxl", "diffusers"]
    assert [r["name"] for r in _json(capsys, "ls", "--tag", "paper")] == ["paper-cut"]
    assert [r["name"] for r in _json(capsys, "ls", "--family", "sdxl")] == ["xl"]

    shown = _json(capsys, "show", "paper-cut")
    assert shown["metadata"]["modelspec.title"] == "Paper Cut" and shown["lineage"] == {"parents": [],
                                                                                       "children": []}
    code, out, _ = cli(capsys, "library", "show", "1")
    assert re.search(r"\n  rank / alpha: +4 / 2\n", out) and re.search(r"\n    ss_network_module: +networks.lora\n", out)

    assert [r["id"] for r in _json(capsys, "search", "layered", "paper")] == [1]
    assert cli(capsys, "library", "search", "nothing-like-this")[1].strip() == "no adapters"


def test_tag_edit_rm_by_id_and_name(capsys, lora_copy):
    path = lora_copy("kohya")
    cli(capsys, "library", "import", str(path))
    code, out, _ = cli(capsys, "library", "tag", "paper-cut", "+style", "+craft", "-craft", "bold")
    assert code == 0 and out.strip() == "#1 paper-cut: style bold"
    code, _, _ = cli(capsys, "library", "edit", "1", "--trigger", "pcut,", "folded", "--weight", "0.8", "--notes",
                      "layered look")
    assert code == 0
    row = _json(capsys, "show", "1")
    assert (row["trigger_words"], row["preferred_weight"], row["notes"]) == (["pcut", "folded"], 0.8,
                                                                            "layered look")
    assert [r["name"] for r in _json(capsys, "search", "folded")] == ["paper-cut"]
    code, _, err = cli(capsys, "library", "edit", "1", "--weight", "nan")
    assert code == 2 and "not a finite number" in err
    stored = _json(capsys, "show", "paper-cut")["path"]
    code, out, _ = cli(capsys, "library", "rm", "paper-cut")
    assert code == 0 and out.splitlines()[1] == f"deleted {Path(stored).parent}" and path.exists()
    code, _, err = cli(capsys, "library", "show", "paper-cut")
    assert code == 2 and err.splitlines()[0] == "error: unknown adapter 'paper-cut'"


def test_check_against_a_base(capsys, lora_copy):
    cli(capsys, "library", "import", str(lora_copy("sd")), "--name", "sd-style", "--base", "builtin:tiny-sd")
    code, out, _ = cli(capsys, "library", "check", "sd-style")
    assert code == 0 and "fits builtin:tiny-sd: 56/56 modules match" in out
    code, out, _ = cli(capsys, "library", "check", "sd-style", "--base", "builtin:tiny-sdxl")
    assert code == 1 and out.count("shape mismatch:") == 12
    report = json.loads(cli(capsys, "library", "check", "1", "--base", "builtin:tiny-llama", "--json")[1])
    assert report["fits"] is False and len(report["missing"]) == 56
    cli(capsys, "library", "import", str(lora_copy("kohya")), "--name", "paper", "--base", "builtin:tiny-sd")
    code, out, err = cli(capsys, "library", "check", "paper")
    assert code == 0, err
    cli(capsys, "library", "edit", "paper", "--base", "")
    code, _, err = cli(capsys, "library", "check", "paper")
    assert code == 2 and "records no base model" in err


def test_ls_pages_a_large_library(capsys, db):
    with db.conn:
        db.conn.executemany("INSERT INTO adapters (name, path, sha256, size, format, family) VALUES (?, ?, ?, 1, "
                            "'kohya', ?)", [(f"a{i}", f"/a{i}", f"h{i}", "sd1" if i % 2 else "sdxl")
                                            for i in range(1, 6)])
    code, out, _ = cli(capsys, "library", "ls", "--limit", "2")
    lines = out.splitlines()
    assert [line.split()[1] for line in lines[1:3]] == ["a5", "a4"]
    assert lines[3] == "... newest 2 of 5 shown; --all lists every one, --tag/--family/--base narrow it"
    assert len(cli(capsys, "library", "ls", "--all")[1].splitlines()) == 6
    assert len(_json(capsys, "ls")) == 5  # scripts get everything
    assert [r["name"] for r in _json(capsys, "ls", "--family", "sdxl", "--limit", "1")] == ["a4"]
