"""A dialog that does what it asks for while it stays open: `run(request)` calls `perform(request)` in a
thread worker; the dialog closes with its result once it succeeds, and a failure is shown inside it (the
same words the CLI prints), every field as it was typed, so a mistake costs one correction, not the form."""

from textual import on, work
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.worker import Worker, WorkerState

from engine.errors import LoratuiError


class WorkingDialog(ModalScreen):
    PROBLEM = "#dialog-problem"  # the Static that shows what went wrong
    BUSY = "working…"

    def perform(self, request):
        """The work, in a thread; its return value is what the dialog closes with."""
        raise NotImplementedError

    def run(self, request) -> None:
        if self.busy:
            return
        self.show_problem(self.BUSY)
        self.set_busy(True)
        self._perform(request)

    @property
    def busy(self) -> bool:
        return any(worker.group == "dialog" and not worker.is_finished for worker in self.workers)

    @work(thread=True, exclusive=True, group="dialog", exit_on_error=False)
    def _perform(self, request):
        return self.perform(request)

    @on(Worker.StateChanged)
    def performed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "dialog":
            return
        event.stop()  # a failure is this dialog's to show, not a notification's
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.set_busy(False)
            self.show_problem(self.describe(event.worker.error) if event.worker.error else "")

    def describe(self, error: BaseException) -> str:
        if isinstance(error, LoratuiError):
            return error.message + (f"\nhint: {error.hint}" if error.hint else "")
        self.app.report_error(error)  # a bug: its traceback is saved, the notification says where
        return f"unexpected failure: {type(error).__name__}: {error}"

    def show_problem(self, text: str) -> None:
        self.query_one(self.PROBLEM, Static).update(Content(text))  # a path's [brackets] are not markup

    def set_busy(self, busy: bool) -> None:
        """The buttons that start the work are disabled while it runs (Cancel stays)."""
        for button in self.query(Button):
            if button.id not in ("cancel", "no"):
                button.disabled = busy
