"""Browse at 80x24 (update with `pytest --snapshot-update`): offline, built-ins listed, a model's detail."""

import pytest
from textual.widgets import Input, Static
from tuihelp import highlight, text_of, until

from loratui.app import LoratuiApp


@pytest.fixture
def steady(monkeypatch, tmp_path):
    """No cursor blink, and an empty working folder, so the local list is the same on every machine."""
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.chdir(tmp_path)


async def _tiny_sd_described(pilot) -> None:
    screen = pilot.app.screen
    await until(pilot, lambda: screen.query_one("#browse-banner", Static).display)
    await highlight(pilot, screen, "builtin:tiny-sd")
    await until(pilot, lambda: "loratui can train" in text_of(screen.query_one("#detail-text", Static)))
    await pilot.pause()


def test_browse_small_terminal_offline(offline, steady, snap_compare):
    assert snap_compare(LoratuiApp(screen="browse"), terminal_size=(80, 24), run_before=_tiny_sd_described)
