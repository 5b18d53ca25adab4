"""Browse, driven with the pilot against the loopback Hub (HF_ENDPOINT) with the real huggingface_hub."""

import html
import re

import pytest
from textual.widgets import DataTable, Input, Select, Static
from textual.widgets._footer import FooterKey
from tuihelp import highlight, names, text_of, until

from loratui.app import LoratuiApp

SIZE = (140, 44)


def search_requests(hub) -> list[str]:
    return [p for p in hub.paths() if p.startswith(("/api/models?", "/api/datasets?")) and "limit=1&" not in p + "&"]


async def test_opens_on_the_list_with_builtins_listed_before_any_search(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: "builtin:tiny-sd" in names(screen))
        assert app.focused is screen.query_one("#browse-list", DataTable)
        assert {"builtin:tiny-sd", "builtin:tiny-sdxl"} <= set(names(screen))
        assert search_requests(fake_hub) == []
        assert not screen.query_one("#browse-banner", Static).display


def footer_says(screen, description: str) -> bool:
    return any(key.description == description for key in screen.query(FooterKey))


async def test_digits_switch_screens_except_in_the_search_box_which_esc_leaves(offline):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        search = screen.query_one("#browse-search", Input)
        await pilot.press("2")  # on arrival the list has the focus: 2 is the run screen
        assert app.current_mode == "detail"
        await pilot.press("3", "slash", *"sd-v1-5")
        assert app.current_mode == "browse" and search.value == "sd-v1-5"  # Hub ids and paths have digits
        assert footer_says(screen, "Leave field")
        await pilot.press("escape")
        assert app.focused is screen.query_one("#browse-list", DataTable) and not footer_says(screen, "Leave field")
        await pilot.press("1")
        assert app.current_mode == "runs" and search.value == "sd-v1-5"


async def test_enter_searches_the_hub_with_the_filters(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"tiny", "enter")
        await until(pilot, lambda: "acme/tiny-sd" in names(screen))
        assert "acme/tiny-llama" in names(screen) and "builtin:tiny-sd" in names(screen)
        assert "acme/flux-like" not in names(screen)
        assert "search=tiny" in search_requests(fake_hub)[-1]

        screen.query_one("#browse-library", Select).value = "diffusers"
        await until(pilot, lambda: "acme/tiny-llama" not in names(screen))
        screen.query_one("#browse-sort", Select).value = "recently updated"
        await until(pilot, lambda: "sort=lastModified" in search_requests(fake_hub)[-1])
        assert "filter=diffusers" in search_requests(fake_hub)[-1]


async def test_model_detail_panel(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"acme", "enter")
        await highlight(pilot, screen, "acme/tiny-sd")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "pipeline tag" in text_of(detail))
        shown = text_of(detail)
        for expected in ("text-to-image", "diffusers", "5.0k", "40", "model_index.json", "unet/config.json",
                         "loratui can train a LoRA: text-to-image, family sd1"):
            assert expected in shown, expected
        assert re.search(r"gated\s+no", shown)

        await highlight(pilot, screen, "acme/flux-like")
        await until(pilot, lambda: "FluxPipeline" in text_of(detail))
        assert "not trainable here" in text_of(detail)


async def test_gated_model_without_a_token_says_what_to_do(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"gated", "enter")
        await highlight(pilot, screen, "acme/gated-sd")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "pipeline tag" in text_of(detail))
        assert "gated: reading it needs a token" in text_of(detail).replace("\n", " ")
        assert "HF_TOKEN" in text_of(detail)


async def test_private_model_opened_by_id_without_a_token_is_a_notification_not_a_crash(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"acme/private-model", "enter")
        await highlight(pilot, screen, "acme/private-model")
        await until(pilot, lambda: any("is private" in n.message for n in app._notifications))
        assert "HF_TOKEN" in text_of(screen.query_one("#detail-text", Static))
        assert app.is_running


async def test_private_model_with_a_token(fake_hub, monkeypatch):
    from hubfake import TOKEN

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"acme/private-model", "enter")
        await highlight(pilot, screen, "acme/private-model")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "pipeline tag" in text_of(detail))
        assert "LlamaForCausalLM" in text_of(detail)


async def test_toggle_to_datasets_and_read_a_hub_dataset(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "builtin:shapes" in names(screen))
        assert "builtin:tiny-sd" not in names(screen)
        await pilot.press("slash", *"rev", "enter")
        await highlight(pilot, screen, "acme/reviews")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "features" in text_of(detail))
        shown = text_of(detail)
        assert "text: string, label: int64" in shown and "train (? rows)" in shown
        assert "row counts unknown until the data is prepared" in shown
        assert "Four short film reviews" in shown
        assert "task_categories%3Atext-classification" not in search_requests(fake_hub)[-1]


async def test_offline_banner_and_local_sources_still_work(offline, tmp_path, monkeypatch):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        banner = screen.query_one("#browse-banner", Static)
        await until(pilot, lambda: banner.display)
        assert "Offline" in text_of(banner)
        await pilot.press("slash", *"sd", "enter")
        await until(pilot, lambda: names(screen) == ["builtin:tiny-sd", "builtin:tiny-sd-shapes", "builtin:tiny-sdxl"])
        await highlight(pilot, screen, "builtin:tiny-sd")
        await until(pilot, lambda: "loratui can train" in text_of(screen.query_one("#detail-text", Static)))


async def test_unreachable_hub_shows_the_banner(fake_hub):
    fake_hub.stop()
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one("#browse-banner", Static)
        await until(pilot, lambda: banner.display)
        assert f"No connection to {fake_hub.endpoint}" in text_of(banner)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet", "text", "imagefolder"])
async def test_a_typed_local_path_is_added_remembered_and_described(kind, tmp_path, offline, quick_worker):
    from test_browse_local import _imagefolder, _write

    path = _imagefolder(tmp_path / "pics") if kind == "imagefolder" else _write(kind, tmp_path)
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t", "slash")
        screen.query_one("#browse-search", Input).value = str(path)
        await pilot.press("enter")
        await highlight(pilot, screen, path.name)
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "features" in text_of(detail))
        assert "train (3 rows)" in text_of(detail)
    from loratui.browse import local
    from loratui.db.library import open_db

    assert local.remembered_paths(open_db()) == [path]


async def test_imagefolder_preview_draws_images_and_checks_the_column_roles(tmp_path, offline, quick_worker):
    from test_browse_local import _imagefolder

    path = _imagefolder(tmp_path / "pics")
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t", "slash")
        screen.query_one("#browse-search", Input).value = str(path)
        await pilot.press("enter")
        await highlight(pilot, screen, "pics")
        preview = screen.query_one("#detail-preview", DataTable)
        await until(pilot, lambda: preview.row_count == 3)
        assert [str(cell) for cell in preview.get_row_at(1)] == ["[image 8×8]", "green"]
        screen_text = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "[image 8×8]" in screen_text, "cells are shown as written, not read as markup"
        image = screen.query_one("#detail-image")  # textual-image's widget, for the terminal's protocol
        assert image.display and image.image is not None
        checks = screen.query_one("#detail-checks", Static)
        assert "columns fit" in text_of(checks)
        assert screen.query_one("#role-caption_column", Select).value == "caption"

        screen.query_one("#role-caption_column", Select).value = "image"
        await until(pilot, lambda: "already the image column" in text_of(checks))
        assert checks.has_class("-bad")


async def test_a_dataset_with_several_configs_offers_them(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t", "slash", *"multi", "enter")
        await highlight(pilot, screen, "acme/multi")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "small (of 2: small, large)" in text_of(detail))
        config = screen.query_one("#detail-config", Select)
        assert config.display and config.value == "small"
        config.value = "large"
        await until(pilot, lambda: "large (of 2: small, large)" in text_of(detail))
        await until(pilot, lambda: screen.query_one("#detail-preview").row_count == 5)


async def test_a_typed_model_folder_switches_to_models_and_is_judged(tmp_path, offline, quick_worker):
    import shutil
    from pathlib import Path

    folder = tmp_path / "my-sd"
    shutil.copytree(Path(__file__).parent / "fixtures" / "repos" / "models" / "acme--tiny-sd", folder)
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t")
        await until(pilot, lambda: screen.kind == "dataset")
        await pilot.press("slash")
        screen.query_one("#browse-search", Input).value = str(folder)
        await pilot.press("enter")
        await until(pilot, lambda: screen.kind == "model" and "my-sd" in names(screen))
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "loratui can train" in text_of(detail))
        assert "unet/config.json" in text_of(detail) and "local" in text_of(detail)


def test_the_template_fits_the_model_family():
    from loratui.browse.entries import DatasetDetail, Entry, ModelDetail, Trainability
    from loratui.screens.spec_editor import SpecEditorScreen

    model = Entry("model", "hub", "acme/xl", "acme/xl")
    xl = ModelDetail("acme/xl", "hub", Trainability(True, "text-to-image", "sdxl"))
    data = Entry("dataset", "local", "/data/pics", "pics")
    pics = DatasetDetail("/data/pics", "local", config="b", configs=["a", "b"], splits={"all": 10},
                         features={"photo": "image", "words": "string"})
    editor = SpecEditorScreen.for_choice(model, xl, data, pics, {"image_column": "photo", "caption_column": "words"})
    values = editor.values
    assert values["train"]["resolution"] == 1024 and values["train"]["gradient_checkpointing"] is True
    assert values["data"] == {**values["data"], "source": "/data/pics", "config": "b", "split": "all",
                              "image_column": "photo", "caption_column": "words"}
    assert editor.split_counts == {"all": 10}

    tiny = ModelDetail("builtin:tiny-sd", "builtin", Trainability(True, "text-to-image", "sd1"))
    small = SpecEditorScreen.for_choice(Entry("model", "builtin", "builtin:tiny-sd", "t"), tiny, None, None, {})
    assert small.values["train"]["resolution"] == 64 and small.values["data"]["source"] == "builtin:shapes"


async def test_enter_before_the_details_arrive_chooses_once_they_do(offline, monkeypatch):
    import threading

    from loratui.browse import models

    release = threading.Event()
    describe = models.describe

    def slow(entry):
        release.wait(10)
        return describe(entry)

    monkeypatch.setattr(models, "describe", slow)
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await highlight(pilot, screen, "builtin:tiny-sd")
        await pilot.press("enter")
        chosen = screen.query_one("#browse-chosen", Static)
        assert "model: none" in text_of(chosen)
        release.set()
        await until(pilot, lambda: "model: builtin:tiny-sd" in text_of(chosen))


async def test_gated_dataset_without_a_token_says_what_to_do(fake_hub):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+t", "slash", *"gated", "enter")
        await highlight(pilot, screen, "acme/gated-data")
        detail = screen.query_one("#detail-text", Static)
        await until(pilot, lambda: "HF_TOKEN" in text_of(detail))
        assert "dataset 'acme/gated-data' is gated: reading it needs a token" in text_of(detail)
        assert any("is gated" in n.message for n in app._notifications)
