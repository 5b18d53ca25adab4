"""The run's headline: name and status, a progress bar, then step, throughput, ETA and loss."""

from datetime import timedelta
from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

if TYPE_CHECKING:  # the runs screen imports this module for STATUS_MARKS before its first frame
    from loratui.history import RunView

STATUS_MARKS = {
    "queued": "…", "running": "●", "stopped": "■", "finished": "✓", "failed": "✗", "crashed": "!",
}


def format_eta(seconds: float | None) -> str:
    return str(timedelta(seconds=round(seconds))) if seconds is not None else "–"


def numbers_line(view: "RunView") -> str:
    total = view.total_steps
    parts = [f"step {view.step}/{total}" if total else f"step {view.step}"]
    if total:
        parts[0] += f" ({100 * view.step / total:.0f}%)"
    if view.epoch is not None:
        parts.append(f"epoch {view.epoch:g}")
    if view.steps_per_s:
        parts.append(f"{view.steps_per_s:.2f} steps/s")
    if view.samples_per_s:
        parts.append(f"{view.samples_per_s:.1f} samples/s")
    if view.row["status"] == "running":
        parts.append(f"ETA {format_eta(view.eta_s)}")
    if view.last_loss is not None:
        parts.append(f"loss {view.last_loss:.4g}")
    return " · ".join(parts)


class RunSummary(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="run-title")
        yield ProgressBar(show_eta=False, id="run-progress")
        yield Static(id="run-numbers")

    def show(self, view: "RunView") -> None:
        row = view.row
        status = row["status"]
        title = f"{STATUS_MARKS.get(status, '?')} {status}  {escape(row['name'])}  [dim]{escape(view.run_id)}[/]"
        if view.device:
            title += f"  [dim]on {escape(str(view.device))}[/]"
        if row.get("error") and status in ("failed", "crashed"):
            title += f"\n{escape(row['error'])}"
        _update(self.query_one("#run-title", Static), title)
        self.set_class(status in ("failed", "crashed"), "-bad")
        self.query_one("#run-progress", ProgressBar).update(total=view.total_steps, progress=view.step)
        _update(self.query_one("#run-numbers", Static), numbers_line(view))


def _update(static: Static, text: str) -> None:
    """Skip unchanged text, and the screen-wide layout pass unless the text may need more or fewer lines."""
    before = str(static.content)
    if text == before:
        return
    width = max(static.size.width, 1)
    lines = (text.count("\n"), len(text) // width)
    static.update(text, layout=lines != (before.count("\n"), len(before) // width))
