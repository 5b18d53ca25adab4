"""Helpers for driving Browse and the run settings with Textual's pilot."""

import time

from textual.widgets import DataTable


async def until(pilot, condition, timeout: float = 20.0) -> None:
    """Wait for worker threads to deliver: bounded, letting the UI run between checks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def names(screen, selector: str = "#browse-list") -> list[str]:
    table = screen.query_one(selector, DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def text_of(widget) -> str:
    """What a Static shows, as plain text (rich renderables included)."""
    import io

    from rich.console import Console
    from rich.text import Text

    content = widget.content
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(Text(content) if isinstance(content, str) else content)
    return console.export_text()


async def highlight(pilot, screen, name: str) -> None:
    """Put the list's cursor on the row named `name` (and so load its detail)."""
    table = screen.query_one("#browse-list", DataTable)
    await until(pilot, lambda: name in names(screen))
    table.focus()
    table.move_cursor(row=names(screen).index(name))
    await pilot.pause()


async def choose(pilot, screen, name: str) -> None:
    await highlight(pilot, screen, name)
    panel = screen.query_one("#browse-detail")

    def described() -> bool:
        return screen.described is not None and panel.entry.title == name and screen.described.ref == panel.entry.ref

    await until(pilot, described, 60)
    await pilot.press("enter")


async def open_editor(pilot, app):
    """Browse to builtin:tiny-sd and builtin:shapes, pick them, open the run settings."""
    screen = app.screen
    await choose(pilot, screen, "builtin:tiny-sd")
    await pilot.press("ctrl+t")
    await choose(pilot, screen, "builtin:shapes")
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.screen.query("SpecForm"))
    await pilot.pause()
    return app.screen
