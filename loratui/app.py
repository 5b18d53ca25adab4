"""The Textual dashboard: registers themes, installs the screens, routes errors to notifications.

Importing this module must not import torch, diffusers, transformers or peft; screens are imported when
first shown, and library.db is opened in workers, so the first frame comes quickly.
"""

import importlib
import threading
from collections.abc import Iterable

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.errors import LoratuiError, save_traceback
from loratui.screens import MAIN_KEYS, MAIN_SCREENS
from loratui.settings import read_setting
from loratui.themes import DEFAULT_THEME, load_themes


def _screen_factory(module: str, name: str):
    return lambda: getattr(importlib.import_module(module), name)()


class LoratuiApp(App):
    TITLE = "loratui"
    CSS_PATH = "app.tcss"
    MODES = {mode: _screen_factory(module, cls) for mode, (module, cls, _, _) in MAIN_SCREENS.items()}
    BINDINGS = [
        # Shown in each screen's top line (MainNav), so the footer keeps room for the screen's own keys.
        Binding("1", "switch_to('runs')", "Runs", show=False),
        Binding("2", "switch_to('detail')", "Run", show=False),
        Binding("3", "switch_to('browse')", "Browse", show=False),
        Binding("4", "switch_to('library')", "Library", show=False),
        Binding("q", "quit", "Quit"),
    ]

    current_run: reactive[str | None] = reactive(None)
    """The run the detail screen shows."""
    selected_adapter: reactive[int | None] = reactive(None)
    """The adapter the library screen puts its cursor on."""

    def __init__(self, screen: str | None = None, worker=None, quick_worker=None) -> None:
        """`worker`, `quick_worker`: library WorkerClients to use instead of starting them (their owner closes
        them)."""
        # The first screen is the starting mode itself, not a default screen switched away from on mount:
        # that switch cost the first frame a second CSS pass over the screen.
        self.DEFAULT_MODE = screen or "runs"
        super().__init__()
        self._library_worker, self._owns_worker = worker, worker is None
        self._quick_worker, self._owns_quick_worker = quick_worker, quick_worker is None
        themes, self.theme_problems = load_themes()
        builtin = set(self.available_themes)
        for theme in themes:
            self.register_theme(theme)
        saved = read_setting("theme")
        self.theme = saved if saved in self.available_themes else DEFAULT_THEME
        # Only the themes from themes/ are offered: tcss is written against their variables.
        for name in builtin - {theme.name for theme in themes}:
            self.unregister_theme(name)
        self._saved_theme = self.theme
        self._unsaved: dict[str, str] = {}
        self._settings_lock = threading.Lock()

    def on_mount(self) -> None:
        for problem in self.theme_problems:
            self.notify(problem, title="theme skipped", severity="warning", timeout=10)

    def library_worker(self):
        """The one library worker (loratui.library.worker_client), kept warm while the dashboard runs, so a
        second generation does not load the base again. Its process starts with its first request."""
        if self._library_worker is None:
            from loratui.library.worker_client import WorkerClient

            self._library_worker = WorkerClient()
        return self._library_worker

    def quick_worker(self):
        """A second library worker for quick engine questions (a run's estimate, a dataset's detail), so they
        never wait behind a generation; torch stays imported in it between questions. Started on first use."""
        if self._quick_worker is None:
            from loratui.library.worker_client import WorkerClient

            self._quick_worker = WorkerClient()
        return self._quick_worker

    def ask_quick(self, request):
        """Ask the quick worker, from a thread worker: the typed result, or None when a newer question has
        superseded this one (its thread worker was cancelled); a failure raises its LoratuiError."""
        from textual.worker import get_current_worker

        from loratui.library.worker_client import DONE, FAILED

        asker = get_current_worker()
        outcome = self.quick_worker().ask(request, cancelled=lambda: asker.is_cancelled)
        if outcome.status == FAILED:
            raise outcome.error
        return outcome.result if outcome.status == DONE else None

    def on_unmount(self) -> None:
        if self._owns_worker and self._library_worker is not None:
            self._library_worker.close()  # cancels what runs; the worker process ends with the dashboard
        if self._owns_quick_worker and self._quick_worker is not None:
            self._quick_worker.close()

    def watch_theme(self, name: str) -> None:
        if name != getattr(self, "_saved_theme", name):
            self._saved_theme = name
            self.save_setting("theme", name)

    def save_setting(self, key: str, value: str) -> None:
        """Remember a preference; the write happens in a worker, and the newest value always wins."""
        self._unsaved[key] = value
        self._write_settings()

    @work(thread=True, group="settings", exit_on_error=False)
    def _write_settings(self) -> None:
        from loratui.settings import write_setting
        from loratui.watch import library

        with self._settings_lock:
            if not self._unsaved:
                return
            with library() as db:
                while self._unsaved:
                    key, value = self._unsaved.popitem()
                    write_setting(db, key, value)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (_, _, title, help_text) in MAIN_SCREENS.items():
            key = MAIN_KEYS.index(mode) + 1
            yield SystemCommand(f"Screen: {title} ({key})", help_text, lambda mode=mode: self.action_switch_to(mode))

    def main_tabs(self) -> list[tuple[int, str, str]]:
        """(key, mode, title) of the main screens."""
        return [(MAIN_KEYS.index(mode) + 1, mode, MAIN_SCREENS[mode][2]) for mode in MAIN_KEYS]

    def action_switch_to(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    def open_run(self, run_id: str) -> None:
        self.current_run = run_id
        self.action_switch_to("detail")

    def open_adapter(self, adapter_id: int) -> None:
        self.selected_adapter = adapter_id
        self.action_switch_to("library")

    @on(Worker.StateChanged)
    def report_failed_worker(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    def report_error(self, error: BaseException) -> None:
        """The same words the CLI prints; a bug's traceback goes to a file named in the notification."""
        if isinstance(error, LoratuiError):
            text = error.message + (f"\nhint: {error.hint}" if error.hint else "")
            self.notify(text, title="error", severity="error", timeout=12, markup=False)
            return
        path = save_traceback(error, prefix="dashboard")
        self.notify(f"{type(error).__name__}: {error}\ntraceback saved in {path}",
                    title="unexpected error", severity="error", timeout=20, markup=False)



def run_app(screen: str | None = None) -> int:
    from loratui.widgets.graphics import probe

    probe()  # the terminal can only be asked before Textual reads its input
    LoratuiApp(screen=screen).run()
    return 0
