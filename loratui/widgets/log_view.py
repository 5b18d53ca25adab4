"""The tail of a run's log with long lines wrapped, not cut at the pane's edge.

RichLog wraps a line when it is written, to the width of that moment: the pane changes width with the
terminal and when samples and log take turns, so the kept lines are written again at the new width.
"""

from collections import deque

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


class WrappedLog(RichLog):
    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        # min_width: RichLog renders at least 78 columns wide by default, wider than the pane.
        super().__init__(max_lines=max_lines, wrap=True, min_width=1, markup=False, highlight=False, id=id)
        self.kept: deque[str] = deque(maxlen=max_lines)
        self._wrapped_at = 0

    def write_lines(self, lines) -> None:
        for line in lines:
            self.kept.append(line)
            self.write(Text(line))
        self._wrapped_at = self.scrollable_content_region.width

    def clear(self) -> "WrappedLog":
        self.kept.clear()
        return super().clear()

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if not self._size_known:
            # RichLog's own on_resize runs next (Textual calls each class's handler) and writes, at this
            # width, what arrived before the first size was known.
            self._wrapped_at = width
            return
        if not self.kept or width == self._wrapped_at:
            return
        super().clear()
        for line in self.kept:
            self.write(Text(line))
        self._wrapped_at = width
