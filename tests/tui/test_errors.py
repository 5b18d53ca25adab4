"""Background failures become notifications (a bug's traceback goes to a file); the app keeps running."""

import json
import subprocess
import sys
from pathlib import Path

from loratui.app import LoratuiApp

from .conftest import until

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "diffusers", "transformers", "peft", "accelerate", "datasets"]


async def test_an_unreadable_library_is_a_notification_not_a_crash(loratui_home):
    loratui_home.mkdir(parents=True, exist_ok=True)
    (loratui_home / "library.db").write_bytes(b"this is not a database" * 100)
    app = LoratuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app._notifications)
        note = next(iter(app._notifications))
        assert note.severity == "error" and "traceback saved in" in note.message
        logged = Path(note.message.split("traceback saved in ")[1].strip())
        assert logged.parent == loratui_home / "logs" and "Traceback" in logged.read_text()
        await pilot.press("4")
        assert app.is_running and app.current_mode == "library"


def test_the_first_frame_imports_no_training_stack(loratui_home):
    """Run the dashboard to its first frame (and its first library read) in a fresh interpreter."""
    probe = (
        "import asyncio, json, sys\n"
        "from loratui.app import LoratuiApp\n"
        "async def main():\n"
        "    app = LoratuiApp()\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        await pilot.pause(0.5)\n"
        "        await pilot.press('2', '4', '1')\n"
        "asyncio.run(main())\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "textual_plotext" in loaded and "sqlite_utils" in loaded
    assert not [name for name in HEAVY if name in loaded]
