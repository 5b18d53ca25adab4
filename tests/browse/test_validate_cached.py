"""A model and a dataset in the HF cache stay usable when the Hub cannot be reached, as with HF_HUB_OFFLINE:
`spec validate` checks them from the cache, at once and without a note."""

import subprocess
import sys
import time

from hubfake import FakeHub

SPEC = ('name = "cached"\n[model]\npretrained = "acme/tiny-sd"\n[data]\nsource = "acme/reviews"\n'
        'image_column = "text"\ncaption_column = "label"\n[train]\nresolution = 64\nmax_steps = 3\n')
FAST_S = 15  # a guard against retries coming back, loose enough for a busy machine


def test_validate_reads_the_hf_cache_once_the_hub_is_gone(tmp_path, monkeypatch):
    hub = FakeHub().load_fixtures().start()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = tmp_path / "cached.toml"
    path.write_text(SPEC)
    command = [sys.executable, "-m", "loratui", "spec", "validate", str(path)]
    try:
        first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        hub.stop()
    assert first.returncode == 0, first.stderr
    assert "(text-to-image, sd1 model, 4 rows of acme/reviews)" in first.stdout
    seen = len(hub.requests)

    started = time.monotonic()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, "")
    assert time.monotonic() - started < FAST_S and len(hub.requests) == seen
