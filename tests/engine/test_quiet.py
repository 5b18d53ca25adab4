"""transformers' torchvision-fallback warning is hidden in built-in builds; its other warnings are not."""

import os
import subprocess
import sys

FALLBACK = "requires torchvision (not installed); falling back to"


def test_only_the_torchvision_fallback_warning_is_hidden():
    code = ("import logging, transformers\n"
            "from engine.quiet import hide_torchvision_fallback\n"
            "hide_torchvision_fallback()\n"
            "transformers.CLIPImageProcessor\n"
            "logging.getLogger('transformers.utils.import_utils').warning('another warning stays')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert FALLBACK not in out.stderr and "another warning stays" in out.stderr


def test_building_a_builtin_prints_no_torchvision_warning(tmp_path):
    env = {**os.environ, "LORATUI_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "loratui", "builtin", "path", "tiny-sd"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert FALLBACK not in out.stderr
