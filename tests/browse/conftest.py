"""A loopback Hub for Browse tests, reached through HF_ENDPOINT by the real huggingface_hub and datasets."""

import pytest
from hubfake import TOKEN, FakeHub


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty HF cache of the test's own, named the way users name it (HF_HOME)."""
    import huggingface_hub.constants as hub_constants

    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    # huggingface_hub copies the cache path at import; a process started with this HF_HOME would have it.
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    return hf_home / "hub"


@pytest.fixture
def fake_hub(monkeypatch, hf_cache):
    import datasets.config as datasets_config
    import huggingface_hub.constants as hub_constants

    hub = FakeHub(token=TOKEN).load_fixtures().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # The libraries read these at import time; a process started with the environment above would see them.
    monkeypatch.setattr(hub_constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        hub_constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets_config, "HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(datasets_config, "HF_HUB_OFFLINE", False)
    yield hub
    hub.stop()


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def built(builtin_home, loratui_home):
    """tiny-sd and shapes built once per session and linked into this test's LORATUI_HOME."""
    import engine.builtin as builtin

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(builtin_home))
        folders = {name: builtin.path(f"builtin:{name}") for name in ("tiny-sd", "shapes")}
    cache = loratui_home / "builtin"
    cache.mkdir(parents=True, exist_ok=True)
    for name, folder in folders.items():
        (cache / name).symlink_to(folder, target_is_directory=True)
    return folders


@pytest.fixture
def no_estimate(monkeypatch):
    """For editor tests about the form alone: the estimate (torch, diffusers imports) never starts."""
    from loratui.screens import spec_editor

    monkeypatch.setattr(spec_editor, "ESTIMATE_DELAY_S", 3600)


@pytest.fixture(scope="session")
def quick_worker(builtin_home):
    """One quick worker process (estimates, dataset details; LoratuiApp(quick_worker=...)) for the offline
    tests, as a process of its own costs seconds to start: its home is the session's, the Hub is off."""
    from loratui.library.worker_client import WorkerClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(builtin_home))
        mp.setenv("HF_HUB_OFFLINE", "1")
        client = WorkerClient()
    yield client
    client.close()
