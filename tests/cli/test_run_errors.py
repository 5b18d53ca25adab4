"""Bad specs and bad inputs fail fast, with the culprit named, no traceback, and nothing created (preflight)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

GOOD = {
    "name": '"bad-case"',
    "model.pretrained": '"builtin:tiny-sd"',
    "data.source": '"builtin:shapes"',
    "train.resolution": "32",
    "train.max_steps": "3",
    "train.batch_size": "4",
    "train.checkpointing_steps": "0",
}


def spec_text(**changes) -> str:
    values = {**GOOD, **{key.replace("__", "."): value for key, value in changes.items()}}
    sections: dict[str, list[str]] = {}
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        section, _, field = key.rpartition(".")
        if section:
            sections.setdefault(section, []).append(f"{field} = {value}")
        else:
            lines.append(f"{field} = {value}")
    for section, fields in sections.items():
        lines += [f"[{section}]", *fields]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def built(builtin_home):
    """tiny-sd and shapes built once, before any timed or output-checked command."""
    env = {**os.environ, "LORATUI_HOME": str(builtin_home)}
    for name in ("tiny-sd", "shapes"):
        subprocess.run([sys.executable, "-m", "loratui", "builtin", "path", name], env=env, check=True,
                       capture_output=True)
    return builtin_home


@pytest.fixture
def home(tmp_path, built):
    home = tmp_path / "home"
    home.mkdir()
    (home / "builtin").symlink_to(built / "builtin")
    return home


def run_cli(home: Path, tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    spec = tmp_path / "run.toml"
    spec.write_text(text)
    env = {**os.environ, "LORATUI_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "loratui", *extra, str(spec)], env=env, capture_output=True,
                          text=True, timeout=300)


def assert_refused(out, home: Path, *fragments: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    assert "\nhint: " in out.stderr
    for fragment in fragments:
        assert fragment in out.stderr, out.stderr
    runs = home / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a refused run left a folder behind"


def test_invalid_fields_are_all_reported_within_seconds(home, tmp_path):
    started = time.monotonic()
    out = run_cli(home, tmp_path, spec_text(lora__rank="0", train__mixed_precision='"fp8"', train__stpes="3"),
                  "run", "--spec")
    assert time.monotonic() - started < 10
    assert_refused(out, home, "(3 problems)", "lora.rank: must be > 0 (got 0)",
                   "train.mixed_precision: 'fp8' is not allowed (allowed: no, fp16, bf16)",
                   "train.stpes: unknown field (allowed: batch_size,")


def test_model_and_data_problems_are_reported_together(home, tmp_path):
    out = run_cli(home, tmp_path, spec_text(train__resolution="33", data__caption_column='"caption"'),
                  "run", "--spec")
    assert_refused(out, home, "preflight found 2 problems",
                   "train.resolution: 33 is not a multiple of the VAE scale factor 2 (allowed: e.g. 32 or 34)",
                   "data.caption_column: no column 'caption' in builtin:shapes (columns: image, text)")


def test_missing_model_and_dataset_are_named(home, tmp_path):
    out = run_cli(home, tmp_path, spec_text(model__pretrained=f'"{tmp_path}/no-model"',
                                            data__source=f'"{tmp_path}/no-data"'), "run", "--spec")
    assert_refused(out, home, f"model.pretrained: {tmp_path}/no-model does not exist",
                   f"data.source: {tmp_path}/no-data does not exist")


def test_unwritable_output_folder_is_refused(home, tmp_path):
    if os.access("/proc", os.W_OK) and Path("/proc").stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no read-only folder on this machine")
    out = run_cli(home, tmp_path, spec_text(output__dir='"/proc/loratui-run"'), "run", "--spec")
    assert_refused(out, home, "output.dir: /proc is not writable")


def test_spec_validate_checks_model_and_columns_without_training(home, tmp_path):
    out = run_cli(home, tmp_path, spec_text(), "spec", "validate")
    assert out.returncode == 0, out.stderr
    assert "is valid (text-to-image, sd1 model, 48 rows of builtin:shapes)" in out.stdout
    out = run_cli(home, tmp_path, spec_text(data__image_column='"picture"'), "spec", "validate")
    assert_refused(out, home, "data.image_column: no column 'picture'")


def _broken_dataset(tmp_path: Path, builtin_home: Path) -> tuple[Path, str]:
    """A copy of builtin:shapes with one PNG truncated half-way."""
    source = builtin_home / "builtin" / "shapes"
    target = tmp_path / "shapes"
    shutil.copytree(source, target)
    victim = sorted((target / "train").glob("*.png"))[5]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    return target, victim.name


def test_an_image_that_does_not_decode_refuses_the_run_by_name(home, tmp_path, builtin_home):
    folder, name = _broken_dataset(tmp_path, builtin_home)
    out = run_cli(home, tmp_path, spec_text(data__source=f'"{folder}"'), "run", "--spec")
    assert_refused(out, home, f"data: image {folder}/train/{name} does not decode", 'data.bad_images = "skip"')


def test_preflight_reports_rows_to_skip(tmp_path, built, monkeypatch):
    import datasets

    from engine import preflight
    from engine.data import load_rows
    from engine.spec import parse_toml

    monkeypatch.setenv("LORATUI_HOME", str(built))
    folder, name = _broken_dataset(tmp_path, built)
    spec = parse_toml(spec_text(data__source=f'"{folder}"', data__bad_images='"skip"'))
    report = preflight.check(spec, tmp_path / "out")
    assert report.errors == [] and len(report.skip_rows) == 1 and report.rows == 48
    rows = load_rows(spec.data, spec.train.seed).cast_column("image", datasets.Image(decode=False))
    assert Path(rows[report.skip_rows[0]]["image"]["path"]).name == name


def test_preflight_refuses_when_the_disk_cannot_hold_the_checkpoints(tmp_path, built, monkeypatch):
    import collections

    from engine import preflight
    from engine.spec import parse_toml

    monkeypatch.setenv("LORATUI_HOME", str(built))
    spec = parse_toml(spec_text(train__checkpointing_steps="1", train__checkpoints_total_limit="3"))
    from engine.tasks.text_to_image.model_info import model_info
    from engine.tasks.text_to_image.preflight import adapter_bytes

    need = preflight._estimated_bytes(spec.train, adapter_bytes(spec, model_info("builtin:tiny-sd")))
    assert need > 4 * (1 << 20)  # four checkpoints (three kept, one being written) of at least 1 MiB each
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10 * need, 9 * need, need // 2))
    report = preflight.check(spec, tmp_path / "out", images=False)
    assert len(report.errors) == 1 and report.errors[0].startswith(f"output.dir: {tmp_path} has ")
    assert "free space, lower train.checkpoints_total_limit" in report.errors[0]
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10 * need, 0, 2 * need))
    assert preflight.check(spec, tmp_path / "out", images=False).errors == []


def test_packages_the_spec_asks_for_are_checked_first(home, tmp_path):
    out = run_cli(home, tmp_path, spec_text(output__report_to='"wandb"', train__use_8bit_adam="true"), "run", "--spec")
    assert_refused(out, home, "output.report_to: needs the wandb package, which is not installed (pip install 'loratui[wandb]')",
                   "train.use_8bit_adam: needs the bitsandbytes package")
