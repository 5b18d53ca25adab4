"""What every dashboard screen shares: a failed worker becomes a notification, never a crash."""

from textual import on
from textual.screen import Screen
from textual.worker import Worker, WorkerState


class LoratuiScreen(Screen):
    @on(Worker.StateChanged)
    def report_failed_worker(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.report_error(event.worker.error)
