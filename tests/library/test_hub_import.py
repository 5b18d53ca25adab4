"""Hub ids go through the real huggingface_hub client, pointed at a loopback Hub by HF_ENDPOINT.

The CLI runs in its own process, as users run it, so huggingface_hub reads HF_ENDPOINT, HF_TOKEN and
HF_HUB_OFFLINE from the environment at import like it always does.
"""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from library_hub import COMMIT, LoopbackHub

TOKEN = "hf_loratuiSecretToken0123456789abcdef"


@pytest.fixture
def hub(loras, tiny_sd):
    server = LoopbackHub(TOKEN)
    peft = loras["peft"]
    server.add("acme/paper-cut", {"paper-cut.safetensors": loras["kohya"].read_bytes(), "README.md": b"# hi"},
               private=True)
    server.add("acme/sd-style", {"pytorch_lora_weights.safetensors": loras["sd"].read_bytes()})
    server.add("acme/llama-lora", {name: (peft / name).read_bytes()
                                   for name in ("adapter_config.json", "adapter_model.safetensors")})
    server.add("acme/old-pickle", {"adapter_model.bin": pickle.dumps({"x": 1}), "adapter_config.json": b"{}"})
    server.add("acme/two-files", {"a.safetensors": loras["kohya"].read_bytes(),
                                  "b.safetensors": loras["sd"].read_bytes()})
    server.add("acme/tiny-sd", {str(p.relative_to(tiny_sd)): p.read_bytes() for p in tiny_sd.rglob("*")
                                if p.is_file() and (p.suffix in (".json", ".safetensors"))})
    yield server.start()
    server.stop()


def _cli(hub, tmp_path, *args, offline=False, token=True, home="home"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(LORATUI_HOME=str(tmp_path / home), HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.endpoint,
               HF_HUB_OFFLINE="1" if offline else "0", HF_HUB_DISABLE_TELEMETRY="1")
    if token:
        env["HF_TOKEN"] = TOKEN
    return subprocess.run([sys.executable, "-m", "loratui", "library", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_import_from_the_hub_keeps_the_token_out_of_the_library(hub, tmp_path):
    out = _cli(hub, tmp_path, "import", "acme/paper-cut", "--tag", "hub")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported #1 paper-cut (kohya, sd1, rank 4, alpha 2)")
    assert ("GET", "/acme/paper-cut/resolve/main/paper-cut.safetensors", f"Bearer {TOKEN}", "") in hub.requests
    row = json.loads(_cli(hub, tmp_path, "show", "paper-cut", "--json").stdout)
    assert row["source"] == f"hf://acme/paper-cut/paper-cut.safetensors@{COMMIT}"
    assert Path(row["path"]).is_relative_to(tmp_path / "home" / "adapters")  # copied out of the HF cache

    home = tmp_path / "home"
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert TOKEN.encode() not in stored
    assert TOKEN[3:].encode() not in stored


def test_diffusers_and_peft_repos(hub, tmp_path):
    out = _cli(hub, tmp_path, "import", "acme/sd-style", "--link")  # the HF cache is not the user's file
    assert out.returncode == 2 and "--link keeps pointing at a local file" in out.stderr
    out = _cli(hub, tmp_path, "import", "acme/sd-style")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported #1 sd-style (diffusers")
    out = _cli(hub, tmp_path, "import", "hf://acme/llama-lora")
    assert out.returncode == 0, out.stderr
    row = json.loads(_cli(hub, tmp_path, "show", "llama-lora", "--json").stdout)
    assert (row["format"], row["family"], Path(row["path"]).name) == ("peft", "llm", row["sha256"])
    assert Path(row["path"]).parent == tmp_path / "home" / "adapters"
    assert sorted(p.name for p in Path(row["path"]).iterdir()) == ["adapter_config.json",
                                                                   "adapter_model.safetensors"]


@pytest.mark.parametrize("args, message", [
    (["acme/paper-cut"], "error: no Hub repo 'acme/paper-cut' (or it is private)"),  # without the token
    (["acme/old-pickle"], "error: refusing adapter_model.bin: .bin files are pickles that can run code"),
    (["acme/two-files"], "error: Hub repo 'acme/two-files' holds 2 .safetensors files (a.safetensors, "
                         "b.safetensors)"),
    (["acme/sd-style", "--weight-name", "../../etc/passwd.safetensors"], "escape the library folder"),
    (["acme/sd-style", "--weight-name", "missing.safetensors"], "has no file 'missing.safetensors'"),
    (["acme/nothing-here"], "error: no Hub repo 'acme/nothing-here'"),
])
def test_hub_refusals(hub, tmp_path, args, message):
    out = _cli(hub, tmp_path, "import", *args, token=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr.splitlines()[0] and out.stderr.splitlines()[1].startswith("hint: ")
    assert "adapter_model.bin" not in hub.fetched("acme/old-pickle")
    assert not (tmp_path / "home" / "adapters").exists() or not any((tmp_path / "home" / "adapters").iterdir())


def test_offline_mode_uses_the_cache_only(hub, tmp_path):
    assert _cli(hub, tmp_path, "import", "acme/sd-style").returncode == 0
    seen = len(hub.requests)
    out = _cli(hub, tmp_path, "import", "acme/sd-style", offline=True, home="other")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported #1 sd-style")
    out = _cli(hub, tmp_path, "import", "acme/paper-cut", offline=True, home="other")
    assert out.returncode == 2
    assert "not in the local Hub cache" in out.stderr and "HF_HUB_OFFLINE" in out.stderr
    assert len(hub.requests) == seen  # offline means no request at all


def test_check_against_a_hub_base_reads_headers_only(hub, tmp_path):
    assert _cli(hub, tmp_path, "import", "acme/sd-style").returncode == 0
    out = _cli(hub, tmp_path, "check", "sd-style", "--base", "acme/tiny-sd")
    assert out.returncode == 0, out.stderr
    assert "fits acme/tiny-sd: 56/56 modules match" in out.stdout
    weights = [(path, byte_range) for method, path, _, byte_range in hub.requests
               if method == "GET" and path.startswith("/acme/tiny-sd/") and path.endswith(".safetensors")]
    assert any("/unet/" in path for path, _ in weights) and any("/text_encoder/" in path for path, _ in weights)
    assert all(byte_range.startswith("bytes=") for _, byte_range in weights)  # headers only, never whole files
