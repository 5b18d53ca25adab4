"""An adapter in the HF cache can still be imported when the Hub cannot be reached, as with HF_HUB_OFFLINE."""

import os
import subprocess
import sys
import time

from library_hub import LoopbackHub

FAST_S = 15  # a guard against retries coming back, loose enough for a busy machine


def test_import_reads_the_hf_cache_once_the_hub_is_gone(loras, tmp_path):
    hub = LoopbackHub(token="")
    hub.add("acme/sd-style", {"pytorch_lora_weights.safetensors": loras["sd"].read_bytes()})
    hub.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_TELEMETRY="1")

    def import_into(home: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loratui", "library", "import", "acme/sd-style"],
                              env={**env, "LORATUI_HOME": str(tmp_path / home)}, capture_output=True, text=True,
                              timeout=120)

    try:
        assert import_into("first").returncode == 0
    finally:
        hub.stop()
    started = time.monotonic()
    out = import_into("second")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported #1 sd-style") and "Retry" not in out.stderr
    assert time.monotonic() - started < FAST_S
