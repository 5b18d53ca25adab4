"""push_to_hub takes the token from the environment, sends it only to the Hub, and writes it nowhere; a failed
upload is reported without failing the run (the adapter is safe on disk)."""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.slow

TOKEN = "hf_loratuiSentinelToken0123456789"
SPEC = """
name = "hub-push"
[model]
pretrained = "builtin:tiny-sd"
[data]
source = "builtin:shapes"
[train]
resolution = 32
center_crop = true
batch_size = 4
max_steps = 2
checkpointing_steps = 0
[output]
push_to_hub = true
hub_model_id = "someone/shapes-lora"
"""


class RefusingHub(BaseHTTPRequestHandler):
    """Records what was asked and by whom; refuses everything."""

    seen: list[tuple[str, str, str]] = []

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        RefusingHub.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "forbidden"}')

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args) -> None:
        pass


def test_token_comes_from_the_environment_and_is_never_written(tmp_path, builtin_home):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home = tmp_path / "home"
    home.mkdir()
    (builtin_home / "builtin").mkdir(exist_ok=True)
    (home / "builtin").symlink_to(builtin_home / "builtin")
    (tmp_path / "run.toml").write_text(SPEC)
    env = {**os.environ, "LORATUI_HOME": str(home), "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    try:
        out = subprocess.run([sys.executable, "-m", "loratui", "run", "--spec", str(tmp_path / "run.toml")], env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr[-2000:]
    assert "error: push_to_hub failed" in out.stderr
    create = [s for s in RefusingHub.seen if s[1] == "/api/repos/create"]
    assert create and create[0][2] == f"Bearer {TOKEN}"
    assert TOKEN not in out.stdout + out.stderr
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink() and "builtin" not in path.parts:
            assert TOKEN.encode() not in path.read_bytes(), path
