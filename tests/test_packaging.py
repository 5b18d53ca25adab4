"""The wheel carries every package, schema/ and themes/; a non-editable install gives a working `loratui`;
every package the code imports is a declared dependency."""

import ast
import importlib.metadata
import re
import subprocess
import sys
import sysconfig
import tomllib
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
    shipped = {n for n in names if n.endswith(".py")}
    assert {p.relative_to(ROOT).as_posix() for top in ("engine", "loratui") for p in (ROOT / top).rglob("*.py")} <= shipped


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
    probe = "from loratui.db.library import open_db; print(sorted(open_db().table_names()))"
    out = subprocess.run([python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "adapters" in out.stdout
    located = subprocess.run([python, "-c", "import loratui; print(loratui.__file__)"], cwd=tmp_path, env=env,
                             capture_output=True, text=True).stdout
    assert str(ROOT) not in located
    found = "from loratui.resources import data_dir; print(data_dir('schema')); print(data_dir('themes'))"
    folders = subprocess.run([python, "-c", found], cwd=tmp_path, env=env, capture_output=True, text=True,
                             check=True).stdout.split()
    assert [Path(f).relative_to(site).as_posix() for f in folders] == ["loratui/schema", "loratui/themes"]


def test_the_checkout_finds_schema_and_themes_at_the_top():
    from loratui.resources import data_dir

    assert (data_dir("schema"), data_dir("themes")) == (ROOT / "schema", ROOT / "themes")


def _required_imports(tree: ast.AST) -> set[str]:
    """Top-level names imported, except inside a try that catches ImportError (an optional extra)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
        ):
            guarded |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_imported_package_is_declared():
    """Arriving through another dependency is not enough: that one may drop it in any release."""
    own = {"engine", "loratui"}
    required = set()
    for top in own:
        for path in (ROOT / top).rglob("*.py"):
            required |= _required_imports(ast.parse(path.read_text()))
    third_party = required - own - set(sys.stdlib_module_names)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_normal(re.split(r"[<>=!~\[ ;]", dep)[0]) for dep in project["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    undeclared = {name for name in third_party if not {_normal(d) for d in providers.get(name, [name])} & declared}
    assert not undeclared, f"imported but not in [project] dependencies: {sorted(undeclared)}"


def _normal(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_package_folder_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(init.parent.relative_to(ROOT).parts) for top in ("engine", "loratui")
               for init in (ROOT / top).rglob("__init__.py")}
    assert folders - listed == set()
