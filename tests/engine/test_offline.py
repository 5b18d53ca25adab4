"""An unreachable Hub is found out by one short probe, and each Hub lookup after it is skipped with one note:
no huggingface_hub retries with backoff (24-47 s before). HF_HUB_OFFLINE asks nothing at all."""

import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from engine import preflight, reach
from engine.adapters.hub import fetch_adapter
from engine.errors import LoratuiError

SPEC = ('name = "hub"\n[model]\npretrained = "acme/some-model"\n[data]\nsource = "acme/some-data"\n'
        "[train]\nmax_steps = 3\n")
FAST_S = 15  # ~2 s measured; a guard against retries coming back, loose enough for a busy machine


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=["unresolvable", "refused"])
def unreachable(request, monkeypatch, tmp_path) -> str:
    """HF_ENDPOINT at a host that does not resolve, or at a loopback port nothing listens on."""
    endpoint = "http://nonexistent.invalid" if request.param == "unresolvable" else _closed_port()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return endpoint


def _loratui(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "loratui", *args], capture_output=True, text=True, timeout=120)
    return out, time.monotonic() - started


def test_spec_validate_notes_each_lookup_it_skipped(unreachable, tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text(SPEC)
    out, took = _loratui("spec", "validate", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [  # no "Retrying in 1s [Retry 1/5]" lines, no other noise
        f"note: model.pretrained: acme/some-model not checked: the Hub could not be reached at {unreachable}",
        f"note: data.source: acme/some-data (columns, rows) not checked: the Hub could not be reached at {unreachable}",
    ]
    assert "unchecked rows of acme/some-data" in out.stdout
    assert took < FAST_S


def test_library_import_fails_at_once_in_one_line(unreachable):
    out, took = _loratui("library", "import", "acme/lora")
    assert out.returncode == 2
    error, hint = out.stderr.splitlines()
    assert error == f"error: 'acme/lora' is not in the local Hub cache and the Hub could not be reached at {unreachable}"
    assert hint.startswith("hint: check the network or HF_ENDPOINT")
    assert took < FAST_S


def test_the_probe_gives_up_fast_and_is_asked_once(unreachable, monkeypatch):
    calls = []
    probe = reach.probe
    monkeypatch.setattr(reach, "probe", lambda url: calls.append(url) or probe(url))
    started = time.monotonic()
    assert not reach.hub(fresh=True).reachable
    assert not reach.hub().reachable
    assert calls == [unreachable] and time.monotonic() - started < reach.PROBE_TIMEOUT_S + 1


def test_browse_asks_the_same_probe(unreachable, monkeypatch):
    from loratui.browse import network

    calls = []
    monkeypatch.setattr(reach, "probe", lambda url: calls.append(url) or False)
    assert network.probe() == f"No connection to {unreachable}: built-ins, HF cache and local folders only."
    assert not reach.hub().reachable and calls == [unreachable]  # later lookups in the process reuse the answer


def test_any_answer_counts_and_silence_times_out():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501 to everything
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert reach.probe(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        assert not reach.probe(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        assert time.monotonic() - started < 2


def test_offline_mode_opens_no_connection(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://nonexistent.invalid")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("this test has no network")

    monkeypatch.setattr(reach, "probe", lambda *args, **kwargs: pytest.fail("probed with HF_HUB_OFFLINE set"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    report = preflight.check_parts({"model": {"pretrained": "acme/some-model"}, "data": {"source": "acme/some-data"}},
                                   [], offline_ok=True)
    assert report.notes == ["model.pretrained: acme/some-model not checked: HF_HUB_OFFLINE is set",
                            "data.source: acme/some-data (columns, rows) not checked: HF_HUB_OFFLINE is set"]
    with pytest.raises(LoratuiError, match="not in the local Hub cache and HF_HUB_OFFLINE is set"):
        fetch_adapter("acme/lora")
    assert attempts == []


def test_runs_started_after_an_unreachable_probe_read_the_cache_at_once(unreachable, monkeypatch):
    monkeypatch.setattr(reach, "_decided", {})
    assert reach.offline_env() == {}  # nothing decided yet, and nothing is probed to find out
    monkeypatch.setattr(reach, "probe", lambda url: False)
    assert not reach.hub().reachable
    assert reach.offline_env() == {"HF_HUB_OFFLINE": "1"}  # handed to the supervisor and the training processes
    monkeypatch.setattr(reach, "probe", lambda url: True)
    assert reach.hub(fresh=True).reachable and reach.offline_env() == {}
