"""`loratui gen | combine | merge` on library adapters: files written, rows recorded, errors in one line."""

import json

import numpy as np
import pytest
from adapter_ops_data import builtin_model, llm_lora, sd_lora
from homes import cli
from PIL import Image

from loratui.cli import main


@pytest.fixture(scope="module")
def files(builtin_home, tmp_path_factory):
    sd = builtin_model("tiny-sd", builtin_home)
    llama = builtin_model("tiny-llama", builtin_home)
    root = tmp_path_factory.mktemp("cli-loras")
    return {
        "sd": sd,
        "llama": llama,
        "ink": sd_lora(sd, root / "ink", rank=4, seed=1),
        "paper": sd_lora(sd, root / "paper", rank=8, seed=2),
        "chat": llm_lora(llama, root / "chat", rank=4, seed=3),
    }


@pytest.fixture
def db(files):
    """A library (in this test's LORATUI_HOME) holding ink, paper and chat, with their base models."""
    from loratui.db.library import open_db
    from loratui.library import adapters

    database = open_db()
    for name, base in (("ink", "sd"), ("paper", "sd"), ("chat", "llama")):
        adapters.register(database, files[name], name=name, base_model=str(files[base]))
    yield database
    database.conn.close()


IMAGE = ("--prompt", "a red circle", "--negative", "blue", "--seed", "7", "--steps", "2", "--guidance", "4")


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_gen_writes_a_png_and_records_the_generation(db, capsys, tmp_path):
    out = tmp_path / "one.png"
    code, stdout, _ = cli(
        capsys,
        "gen",
        "--adapter",
        "ink:0.8",
        "--adapter",
        "paper:-0.3",
        *IMAGE,
        "--size",
        "32x48",
        "--out",
        str(out),
    )
    assert code == 0 and str(out) in stdout
    assert Image.open(out).size == (32, 48)
    row = db.execute("SELECT * FROM generations").fetchone()
    columns = [d[0] for d in db.execute("SELECT * FROM generations").description]
    row = dict(zip(columns, row, strict=True))
    assert json.loads(row["adapters"]) == [
        {"id": 1, "name": "ink", "weight": 0.8},
        {"id": 2, "name": "paper", "weight": -0.3},
    ]
    assert (row["prompt"], row["negative_prompt"], row["seed"], row["steps"], row["guidance"]) == (
        "a red circle",
        "blue",
        7,
        2,
        4.0,
    )
    assert (row["width"], row["height"], row["path"]) == (32, 48, str(out.resolve()))
    # The same seed and settings give the same image; the weights matter.
    cli(
        capsys,
        "gen",
        "--adapter",
        "ink:0.8",
        "--adapter",
        "paper:-0.3",
        *IMAGE,
        "--size",
        "32x48",
        "--out",
        str(tmp_path / "again.png"),
    )
    cli(
        capsys,
        "gen",
        "--adapter",
        "ink:0.5",
        "--adapter",
        "paper:-0.3",
        *IMAGE,
        "--size",
        "32x48",
        "--out",
        str(tmp_path / "other.png"),
    )
    assert np.array_equal(_pixels(out), _pixels(tmp_path / "again.png"))
    assert not np.array_equal(_pixels(out), _pixels(tmp_path / "other.png"))
    assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == 3


def test_gen_takes_per_block_scales_and_records_them(db, capsys, tmp_path):
    scales = {"unet": {"up": {"block_0": [1.0, 0.0, 0.5]}}, "text_encoder": 0.5}
    code, _, _ = cli(
        capsys,
        "gen",
        "--adapter",
        "ink",
        "--scales",
        f"ink={json.dumps(scales)}",
        *IMAGE,
        "--size",
        "32x32",
        "--json",
    )
    assert code == 0
    (adapters,) = db.execute("SELECT adapters FROM generations").fetchone()
    assert json.loads(adapters) == [{"id": 1, "name": "ink", "weight": None, "scales": scales}]


def test_grid_is_one_labelled_sheet_of_the_expected_size(db, capsys, tmp_path):
    out = tmp_path / "grid.png"
    code, _, _ = cli(
        capsys,
        "gen",
        "--grid",
        "--adapter",
        "ink:0,0.5,1",
        "--adapter",
        "paper",
        "--weights",
        "1",
        "2",
        *IMAGE,
        "--size",
        "32x32",
        "--out",
        str(out),
    )
    assert code == 0
    # Columns 0, 0.5, 1, 2; rows: base, ink, paper. 120 + 4 * 36 + 4 by 20 + 3 * 36 + 4.
    assert Image.open(out).size == (268, 132)
    (adapters,) = db.execute("SELECT adapters FROM generations").fetchone()
    assert [a["weights"] for a in json.loads(adapters)] == [[0.0, 0.5, 1.0], [1.0, 2.0]]


def test_combine_registers_the_result_with_its_lineage(db, capsys, tmp_path):
    code, stdout, _ = cli(
        capsys, "combine", "ink", "paper", "--weights", "0.6", "0.4", "--method", "cat", "--name", "inkpaper"
    )
    assert code == 0 and "inkpaper" in stdout
    child = db.execute("SELECT id, rank, base_model, path FROM adapters WHERE name = 'inkpaper'").fetchone()
    assert (
        child[1] == 12
        and child[2] == db.execute("SELECT base_model FROM adapters WHERE id = 1").fetchone()[0]
    )
    lineage = db.execute(
        "SELECT parent, parent_name, weight, method FROM lineage WHERE child = ?", [child[0]]
    )
    assert lineage.fetchall() == [(1, "ink", 0.6, "cat"), (2, "paper", 0.4, "cat")]
    # The combined adapter makes what its parents make at those weights.
    cli(
        capsys, "gen", "--adapter", "inkpaper:1", *IMAGE, "--size", "32x32", "--out", str(tmp_path / "c.png")
    )
    cli(
        capsys,
        "gen",
        "--adapter",
        "ink:0.6",
        "--adapter",
        "paper:0.4",
        *IMAGE,
        "--size",
        "32x32",
        "--out",
        str(tmp_path / "p.png"),
    )
    assert np.abs(_pixels(tmp_path / "c.png") - _pixels(tmp_path / "p.png")).max() <= 1


def test_combine_records_the_method_parameters(db, capsys):
    code, _, _ = cli(
        capsys,
        "combine",
        "ink",
        "paper",
        "--method",
        "ties_svd",
        "--density",
        "0.5",
        "--rank",
        "4",
        "--name",
        "pruned",
    )
    assert code == 0
    params = db.execute(
        "SELECT params FROM lineage JOIN adapters ON adapters.id = child WHERE name = 'pruned'"
    )
    assert [json.loads(p) for (p,) in params] == [{"density": 0.5, "rank": 4}] * 2


def test_pruning_combines_take_a_default_density_and_record_it(db, capsys, tmp_path, files):
    from adapter_ops_data import sd_lora

    from engine.adapters.combine_options import DEFAULT_DENSITY
    from loratui.library import adapters

    # ties needs equal ranks: a second rank-4 adapter beside ink.
    adapters.register(db, sd_lora(files["sd"], tmp_path / "ink2", rank=4, seed=5), name="ink2",
                      base_model=str(files["sd"]))
    for method, parents in (("ties", ("ink", "ink2")), ("dare_ties_svd", ("ink", "paper"))):
        code, stdout, _ = cli(capsys, "combine", *parents, "--method", method, "--name", f"by-{method}")
        assert code == 0 and f"by-{method}: {method} of" in stdout
        params = db.execute("SELECT params FROM lineage JOIN adapters ON adapters.id = child WHERE name = ?",
                            [f"by-{method}"])
        assert {json.loads(p)["density"] for (p,) in params} == {DEFAULT_DENSITY}
    with pytest.raises(SystemExit):
        main(["combine", "--help"])
    assert f"default {DEFAULT_DENSITY}" in " ".join(capsys.readouterr().out.split())


def test_generated_pngs_follow_the_umask(db, capsys, tmp_path):
    import os
    import stat
    from pathlib import Path

    for umask, mode, out in ((0o022, 0o644, []), (0o077, 0o600, ["--out", str(tmp_path / "private.png")])):
        previous = os.umask(umask)
        try:
            code, stdout, _ = cli(capsys, "gen", "--adapter", "ink:0.8", *IMAGE, "--size", "32x32", *out)
        finally:
            os.umask(previous)
        assert code == 0
        written = Path(stdout.split()[0])  # the library's generations folder, or --out
        assert stat.S_IMODE(written.stat().st_mode) == mode, (umask, oct(written.stat().st_mode))


def test_merge_writes_a_model_that_generates_like_the_adapters(db, capsys, tmp_path, files):
    out = tmp_path / "merged"
    code, stdout, _ = cli(
        capsys, "merge", str(files["sd"]), "--adapter", "ink:0.8", "--adapter", "paper:0.5", "--out", str(out)
    )
    assert code == 0 and (out / "model_index.json").is_file()
    cli(capsys, "gen", "--base", str(out), *IMAGE, "--size", "32x32", "--out", str(tmp_path / "m.png"))
    cli(
        capsys,
        "gen",
        "--adapter",
        "ink:0.8",
        "--adapter",
        "paper:0.5",
        *IMAGE,
        "--size",
        "32x32",
        "--out",
        str(tmp_path / "a.png"),
    )
    assert np.abs(_pixels(tmp_path / "m.png") - _pixels(tmp_path / "a.png")).max() <= 1


def test_llm_gen_prints_and_records_the_completion(db, capsys):
    argv = (
        "gen",
        "--adapter",
        "chat:0.9",
        "--prompt",
        "the cat",
        "--seed",
        "2",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0.8",
    )
    code, first, _ = cli(capsys, *argv)
    _, again, _ = cli(capsys, *argv)
    assert code == 0 and first.strip() and first == again
    text, settings, path = db.execute("SELECT output_text, settings, path FROM generations").fetchone()
    assert text == first.rstrip("\n") and path is None
    assert json.loads(settings)["max_new_tokens"] == 8 and json.loads(settings)["temperature"] == 0.8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("gen", "--adapter", "nope", "--prompt", "x"), "unknown adapter 'nope'"),
        (
            ("gen", "--adapter", "ink:0.5", "--scales", "ink={}", "--prompt", "x"),
            "both a weight and --scales",
        ),
        (("gen", "--adapter", "ink:0.5,1", "--prompt", "x"), "several weights"),
        (("gen", "--adapter", "ink", "--prompt", "x", "--size", "31x32", "--steps", "1"), "width: 31"),
        (
            ("gen", "--adapter", "ink", "--scales", 'ink={"unet": {"up": {"block_3": 1}}}', "--prompt", "x"),
            "unet.up.block_3",
        ),
        (("gen", "--prompt", "x"), "cannot tell which base model"),
        (("combine", "ink", "paper", "--method", "linear", "--name", "lin"), "equal rank"),
        (("combine", "ink", "paper", "--name", "ink"), "already exists"),
        (("combine", "ink", "paper", "--method", "dare_ties", "--rank", "4", "--name", "x"), "takes no rank"),
        (("combine", "ink", "chat", "--name", "odd"), "different families (ink is sd1, chat is llm)"),
    ],
)
def test_bad_requests_fail_in_one_line_and_record_nothing(db, capsys, argv, message):
    before = db.execute("SELECT count(*) FROM adapters").fetchone()[0]
    code, stdout, stderr = cli(capsys, *argv)
    assert code == 2 and message in stderr.splitlines()[0] and stderr.splitlines()[1].startswith("hint:")
    assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM adapters").fetchone()[0] == before
