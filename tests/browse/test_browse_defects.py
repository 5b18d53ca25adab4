"""Browse defects found on a first try: the screen that left by itself, stale details, shared queries, `/`."""

import os
import pty
import select
import struct
import sys
import time

import pytest
from textual.widgets import DataTable, Input, Static
from tuihelp import names, text_of, until

from loratui.app import LoratuiApp

SIZE = (140, 45)


async def shown_detail(pilot, screen, words: str) -> None:
    await until(pilot, lambda: words in text_of(screen.query_one("#detail-text", Static)))


@pytest.mark.parametrize("hub", ["offline", "fake_hub"])
async def test_a_search_without_matches_clears_the_detail_and_says_so(hub, request):
    request.getfixturevalue(hub)
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        panel = screen.query_one("#browse-detail")
        await shown_detail(pilot, screen, "builtin:tiny-bert")
        await pilot.press("slash", *"zzz-none", "enter")
        await shown_detail(pilot, screen, "no matches for 'zzz-none'")
        assert names(screen) == [] and panel.entry is None and screen.described is None
        assert "tiny-bert" not in text_of(screen.query_one("#detail-text", Static))

        await pilot.press("slash", *"tiny-sd", "enter")
        await shown_detail(pilot, screen, "loratui can train")
        assert panel.entry is not None and "tiny-sd" in panel.entry.ref


async def test_each_tab_keeps_its_own_query_and_shows_its_own_details(offline, quick_worker):
    app = LoratuiApp(screen="browse", quick_worker=quick_worker)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        search = screen.query_one("#browse-search", Input)
        panel = screen.query_one("#browse-detail")
        await pilot.press("slash", *"tiny-sd", "enter")
        await until(pilot, lambda: names(screen) == ["builtin:tiny-sd", "builtin:tiny-sd-shapes", "builtin:tiny-sdxl"])
        await shown_detail(pilot, screen, "builtin:tiny-sd")

        await pilot.press("ctrl+t")
        await until(pilot, lambda: "builtin:shapes" in names(screen))
        assert screen.kind == "dataset" and search.value == ""
        assert "builtin:tiny-text" in names(screen), "the models' query does not filter datasets"
        await until(pilot, lambda: panel.entry is not None and panel.entry.kind == "dataset")
        assert "tiny-sd" not in text_of(screen.query_one("#detail-text", Static))

        await pilot.press("slash", *"chat", "enter")
        await until(pilot, lambda: names(screen) == ["builtin:tiny-chat"])
        await pilot.press("ctrl+t")
        await until(pilot, lambda: names(screen) == ["builtin:tiny-sd", "builtin:tiny-sd-shapes", "builtin:tiny-sdxl"])
        assert screen.kind == "model" and search.value == "tiny-sd"
        await until(pilot, lambda: panel.entry is not None and panel.entry.kind == "model")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: names(screen) == ["builtin:tiny-chat"])
        assert search.value == "chat"


async def test_slash_starts_a_search_from_anywhere_and_is_typed_inside_the_box(offline):
    app = LoratuiApp(screen="browse")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        search = screen.query_one("#browse-search", Input)
        table = screen.query_one("#browse-list", DataTable)
        await until(pilot, lambda: "builtin:tiny-sd" in names(screen))
        await pilot.press("slash", *"acme/tiny")  # in one go, as typed fast: Hub ids have a `/`
        assert app.focused is search and search.value == "acme/tiny"
        await pilot.press("ctrl+u", *"tiny-sd", "enter")
        assert app.focused is table, "Enter searches and leaves the box for the results"
        await pilot.press("slash", *"llama")  # the next search, as in less: no `/` typed before it
        assert app.focused is search and search.value == "llama"

        others = [w for w in screen.focus_chain if w is not search]
        assert table in others and len(others) >= 4
        for widget in others:
            search.value = "stabilityai"
            widget.focus()
            await pilot.pause()
            await pilot.press("slash")
            assert app.focused is search and search.value == "stabilityai", widget
            search.cursor_position = len(search.value)
            await pilot.press(*"/sdxl")
            assert search.value == "stabilityai/sdxl", widget


# Drawn in a pseudo-terminal: once Textual reads the input, a question to the terminal gets its answer read
# as keys (a DA1 answer `ESC[?1;2c` is `1` then `2`: the Runs screen, then the Run screen).
CHILD = """
import asyncio
from PIL import Image
from loratui.app import LoratuiApp
from loratui.browse.entries import DatasetDetail, Entry

async def main():
    app = LoratuiApp(screen="runs")
    async with app.run_test(size=(140, 45)) as pilot:
        print("STARTED", flush=True)
        await pilot.press("3")
        while not app.screen.query("#browse-detail"):
            await pilot.pause(0.05)
        picture = Image.new("RGB", (8, 8), "red")
        detail = DatasetDetail("pics", "local", features={"image": "image"}, rows=[{"image": picture}],
                               image_columns=["image"])
        app.screen.query_one("#browse-detail").show_dataset(Entry("dataset", "local", "pics", "pics"), detail, None)
        await pilot.pause(0.5)
        print("DONE", app.current_mode, bool(app.screen.query("#detail-image")), flush=True)

asyncio.run(main())
"""
QUESTIONS = (b"\x1b[c", b"\x1b_G", b"\x1b[16t", b"\x1b[14t")


def test_browse_asks_the_terminal_nothing_once_the_dashboard_runs():
    import fcntl
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", CHILD])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 140, 1400, 900))
    seen, deadline = b"", time.monotonic() + 60
    try:
        while b"DONE" not in seen or not seen.endswith(b"\n"):
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    assert b"STARTED" in seen, seen
    after = seen[seen.index(b"STARTED"):]
    assert b"DONE browse True" in after, after
    assert not [q for q in QUESTIONS if q in after], after
