"""Run the dashboard in this process (headless) against LORATUI_HOME: Browse's detail of builtin:tiny-sd and
builtin:shapes, then the run settings for the pair until the estimate shows, then again with rank 8. Print
as JSON what was shown, what this process mapped of libtorch and imported, and whether the quick worker
mapped libtorch and ended with the dashboard. Run by tests/tui/test_no_torch_in_dashboard.py in a process of
its own: a pilot test shares the test process, which imports torch."""

import asyncio
import json
import sys
import time
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate", "datasets")
TIMEOUT_S = 120


def libtorch(pid: str = "self") -> list[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sorted({line.split()[-1] for line in lines if "libtorch" in line})


async def until(pilot, condition) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await pilot.pause(0.05)


async def described(pilot, screen, ref: str) -> None:
    """Put the list's cursor on `ref`, wait for its detail, and pick it (Enter)."""
    from textual.widgets import DataTable

    table = screen.query_one("#browse-list", DataTable)
    await until(pilot, lambda: any(str(table.get_row_at(i)[1]) == ref for i in range(table.row_count)))
    table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == ref))
    await until(pilot, lambda: screen.described is not None and screen.described.ref == ref)
    await pilot.press("enter")


async def main() -> dict:
    from textual.widgets import Input, Static

    from loratui.app import LoratuiApp

    app = LoratuiApp(screen="browse")
    report = {}
    async with app.run_test(size=(140, 44)) as pilot:
        browse = app.screen
        await described(pilot, browse, "builtin:tiny-sd")
        report["model"] = browse.described.trainability.reason
        await pilot.press("ctrl+t")
        await described(pilot, browse, "builtin:shapes")
        report["dataset"] = browse.described.splits
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.query("#editor-estimate"))
        estimate = app.screen.query_one("#editor-estimate", Static)
        await until(pilot, lambda: "trainable" in str(estimate.content))
        report["first"] = str(estimate.content)
        app.screen.query_one("#edit-lora-rank", Input).value = "8"
        await until(pilot, lambda: "trainable" in str(estimate.content) and str(estimate.content) != report["first"])
        report["second"] = str(estimate.content)
        worker = app.quick_worker()._proc.pid
        report["worker_libtorch"] = bool(libtorch(str(worker)))
        report["libtorch"] = libtorch()
    report["heavy"] = [name for name in HEAVY if name in sys.modules]
    report["worker_ended"] = not Path(f"/proc/{worker}").exists()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
