"""Import boundaries, checked in fresh interpreters so the test can fail."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["torch", "diffusers", "transformers", "peft", "accelerate", "datasets"]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_app_module_does_not_import_heavy_libraries():
    loaded = _modules_after("import loratui.app, loratui.cli; loratui.cli.build_parser()")
    assert not [name for name in HEAVY if name in loaded]


def test_the_dashboard_starts_without_the_command_modules_or_pandas():
    """Its first frame does not wait for them (sqlite_utils would import pandas for a column type)."""
    loaded = _modules_after("import loratui.app, loratui.cli\nloratui.app.run_app = lambda screen=None: 0\n"
                            "loratui.cli.main([])\nfrom loratui.watch import library\nwith library(): pass")
    assert "sqlite_utils" in loaded and "pandas" not in loaded
    assert not [name for name in loaded if name.startswith("loratui.commands.")]


@pytest.mark.parametrize("module", ["engine.events", "engine.builtin", "engine.spec", "engine.spec_template",
                                    "engine.spec_convert", "engine.rundir", "engine.preflight"])
def test_light_engine_modules_stay_light(module):
    loaded = _modules_after(f"import {module}")
    assert not [name for name in HEAVY if name in loaded]


def test_engine_never_imports_the_face():
    code = "import pkgutil, importlib, engine\n" + (
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n    importlib.import_module(m.name)"
    )
    loaded = _modules_after(code)
    assert not [name for name in loaded if name.split(".")[0] in ("loratui", "textual", "rich")]


def test_import_contracts():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "engine.adapters modules import each other without cycles KEPT" in out.stdout
