"""Hub search and details through the real huggingface_hub client, against the loopback Hub."""

import os

import pytest
from hubfake import TOKEN

from engine.errors import LoratuiError
from loratui.browse import hub, network


def test_model_search_sends_filters_and_sort_and_reads_the_answer(fake_hub):
    found = hub.search_models("", library="diffusers", task="text-to-image", sort="likes")
    assert [e.ref for e in found] == ["acme/gated-sd", "acme/tiny-sd", "acme/flux-like"]
    assert found[1].downloads == 5000 and found[1].likes == 40 and found[1].source == "hub"
    query = fake_hub.paths()[-1]
    assert "filter=diffusers" in query and "pipeline_tag=text-to-image" in query and "sort=likes" in query


@pytest.mark.parametrize(
    ("sort", "sent", "first"),
    [
        ("downloads", "sort=downloads", "acme/flux-like"),
        ("recently updated", "sort=lastModified", "acme/tiny-llama"),
    ],
)
def test_model_sorts(fake_hub, sort, sent, first):
    found = hub.search_models("", sort=sort)
    assert found[0].ref == first
    assert sent in fake_hub.paths()[-1]


def test_search_text_and_library_filter(fake_hub):
    assert [e.ref for e in hub.search_models("llama", library="transformers")] == ["acme/tiny-llama"]
    assert hub.search_models("llama", library="diffusers") == []


def test_dataset_search_filters_by_task(fake_hub):
    found = hub.search_datasets("", task="text-classification")
    assert [e.ref for e in found] == ["acme/reviews", "acme/multi"]
    assert "task_categories%3Atext-classification" in fake_hub.paths()[-1]


def test_model_detail_reads_info_files_and_trainability(fake_hub):
    detail = hub.model_detail("acme/tiny-sd")
    assert (detail.pipeline_tag, detail.library, detail.downloads, detail.likes) == (
        "text-to-image",
        "diffusers",
        5000,
        40,
    )
    assert "model_index.json" in [name for name, _ in detail.files]
    assert detail.size_bytes == sum(size for _, size in detail.files) > 0
    assert detail.gated is False
    assert detail.trainability.trainable and detail.trainability.task == "text-to-image"
    assert detail.trainability.family == "sd1"


def test_pipelines_loratui_does_not_train_say_so(fake_hub):
    judged = hub.model_detail("acme/flux-like").trainability
    assert not judged.trainable and "FluxPipeline" in judged.reason


def test_gated_model_without_token_explains_what_to_do(fake_hub):
    detail = hub.model_detail("acme/gated-sd")
    assert detail.gated == "auto"
    assert not detail.trainability.trainable
    assert "gated" in detail.trainability.reason and "HF_TOKEN" in detail.trainability.reason


def test_gated_model_with_token_is_read_and_the_token_is_sent(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert hub.model_detail("acme/gated-sd").trainability.trainable
    assert ("HEAD", "/acme/gated-sd/resolve/main/model_index.json", f"Bearer {TOKEN}") in fake_hub.requests


def test_private_model_without_token_is_a_clear_error(fake_hub):
    with pytest.raises(LoratuiError) as caught:
        hub.model_detail("acme/private-model")
    assert "not found or is private" in caught.value.message and "HF_TOKEN" in caught.value.hint


def test_private_model_with_token(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert hub.model_detail("acme/private-model").trainability.task == "causal-lm"


def test_offline_mode_never_calls_the_hub(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "Offline" in network.probe()
    with pytest.raises(network.HubUnavailable):
        hub.search_models("sd")
    assert fake_hub.requests == []


def test_unreachable_endpoint_is_reported_not_raised(fake_hub):
    fake_hub.stop()
    banner = network.probe()
    assert banner.startswith("No connection to") and fake_hub.endpoint in banner


def test_connection_failures_become_hub_unavailable():
    """huggingface_hub retries a refused connection for ~20 s before raising; the mapping is checked alone."""
    import httpx2

    with pytest.raises(network.HubUnavailable, match="No connection"):
        with network.hub_errors("acme/x"):
            raise httpx2.ConnectError("refused")
    with pytest.raises(network.HubUnavailable):
        with network.hub_errors("acme/x", "dataset"):
            try:
                raise httpx2.ConnectError("refused")
            except httpx2.ConnectError as exc:
                raise ConnectionError("Couldn't reach 'acme/x' on the Hub") from exc
    with pytest.raises(KeyError):
        with network.hub_errors("acme/x"):
            raise KeyError("a bug stays a bug")


def test_dataset_card(fake_hub):
    card = hub.dataset_card("acme/reviews")
    assert card["downloads"] == 800 and "data/train.csv" in card["files"]
    assert card["card"].startswith("# Reviews")


def test_the_token_is_never_written(fake_hub, monkeypatch, tmp_path, loratui_home):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.search_models("sd")
    hub.model_detail("acme/gated-sd")
    hub.dataset_card("acme/gated-data")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, "the HF cache should hold the downloaded configs"
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]
    assert TOKEN not in os.environ.get("HF_HOME", "")
