"""Themes are data (themes/*.toml), switchable from the palette, remembered; styles use theme variables."""

import re
from pathlib import Path

from loratui.app import LoratuiApp
from loratui.resources import data_dir
from loratui.themes import load_themes

from .conftest import settings_saved

ROOT = Path(__file__).resolve().parents[2]
COLOUR_PROPERTIES = re.compile(r"^\s*([a-z-]*(color|background|border[a-z-]*|outline[a-z-]*|tint))\s*:\s*([^;]+);",
                               re.MULTILINE)


def test_shipped_themes_include_dark_light_and_high_contrast():
    themes, problems = load_themes()
    names = {theme.name for theme in themes}
    assert {"loratui-dark", "loratui-light", "loratui-high-contrast"} <= names and not problems
    assert {theme.name for theme in themes if not theme.dark} >= {"loratui-light"}


async def test_theme_chosen_in_the_palette_is_remembered():
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "loratui-dark"
        assert set(app.available_themes) == {theme.name for theme in load_themes()[0]}
        await pilot.press("ctrl+p", *"theme", "enter")
        await pilot.press(*"light", "enter")
        assert app.theme == "loratui-light"
        await settings_saved(app)
    again = LoratuiApp()
    async with again.run_test(size=(80, 24)):
        assert again.theme == "loratui-light"


async def test_a_broken_user_theme_is_reported_and_a_good_one_offered(loratui_home):
    folder = loratui_home / "themes"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('name = "mine"\nprimary = "#00aa00"\ndark = true\n')
    (folder / "broken.toml").write_text('name = "broken"\nprimray = "#00aa00"\n')
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "mine" in app.available_themes and "broken" not in app.available_themes
        notes = "\n".join(note.message for note in app._notifications)
        assert "broken.toml" in notes and "primray" in notes


def test_styles_take_colours_from_theme_variables_only():
    sheets = list((ROOT / "loratui").rglob("*.tcss")) + list(data_dir("themes").glob("*.tcss"))
    assert sheets
    literal = []
    for sheet in sheets:
        for match in COLOUR_PROPERTIES.finditer(sheet.read_text()):
            value = match.group(3)
            if "$" not in value and value.strip() not in ("none", "transparent", "hidden"):
                literal.append(f"{sheet.name}: {match.group(0).strip()}")
    assert not literal
