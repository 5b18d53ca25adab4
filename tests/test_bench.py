"""Every benchmark still runs and reports, at its smallest settings. Only that: the figures themselves are
measured by hand on a quiet machine (timed tests would measure the CI machine's neighbours)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from homes import share_builtins

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench"
CASES = {
    "adapter_ops.py": (["--repeats", "1"], "merge/fuse + save"),
    "cache_build.py": (["--images", "8", "--resolution", "32"], "ratio 1-proc / 2-proc"),
    "library_search.py": (["--adapters", "50", "--repeats", "1"], "ls --all (50 rows"),
    "long_run.py": (["--events", "2000", "--idle", "1"], "idle CPU"),
    "library_filter.py": (["--adapters", "300", "--repeats", "1"], "per keystroke at 300 adapters"),
    "mixer_switch.py": (["--rounds", "1", "--steps", "1"], "ratio warm generation / base load"),
    "tui_start.py": (["--rounds", "1"], "ratio"),
    "event_overhead.py": (["--steps", "6", "--rounds", "1", "--resolution", "32"], "ratio, median of the rounds"),
    "gpu_check.py": (["--smoke"], "PASS/FAIL per goal"),
    "lm_throughput.py": (["--rows", "24", "--max-length", "64", "--rounds", "1"], "goals: packing >= 2.0"),
    "train_throughput.py": (["--steps", "7", "--rounds", "1", "--resolution", "32", "--compile-backend", "none"],
                            "goals: cache off >= 1.0"),
}


def test_every_benchmark_is_covered():
    assert sorted(CASES) == sorted(p.name for p in BENCH.glob("*.py"))


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_reports(script, tmp_path, builtin_home):
    args, expected = CASES[script]
    home = share_builtins(tmp_path / "home", builtin_home)
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "LORATUI_HOME": str(home)}, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert expected in out.stdout
