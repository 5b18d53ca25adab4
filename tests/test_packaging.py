"""The wheel carries schema/ and themes/, and a non-editable install gives a working `loratui`."""

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    return next(out.glob("loratui-*.whl"))


def test_wheel_holds_schema_and_themes(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    schema = {Path(n).name for n in names if n.startswith("loratui/schema/")}
    themes = {Path(n).name for n in names if n.startswith("loratui/themes/")}
    assert {p.name for p in (ROOT / "schema").glob("*.sql")} <= schema
    assert {p.name for p in (ROOT / "themes").iterdir() if p.suffix in (".toml", ".tcss")} <= themes
    assert any(n.startswith("engine/") for n in names)


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    # Reuse the test environment's dependencies instead of downloading them again.
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = tmp_path / "home"
    env = {"LORATUI_HOME": str(home), "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin"}
    out = subprocess.run([env_dir / "bin" / "loratui", "builtin", "ls"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "builtin:tiny-sd" in out.stdout
    probe = "from loratui.library.db import open_db; print(sorted(open_db().table_names()))"
    out = subprocess.run([python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "adapters" in out.stdout
    located = subprocess.run([python, "-c", "import loratui; print(loratui.__file__)"], cwd=tmp_path, env=env,
                             capture_output=True, text=True).stdout
    assert str(ROOT) not in located
