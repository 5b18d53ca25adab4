"""Which image protocol the terminal speaks, asked once before Textual starts, in one round trip.

textual-image asks the terminal on import, one question at a time with a 0.1 s timeout for a terminal
that stays silent, and pulls numpy and PIL in: ~0.25 s before the first frame. Instead, `probe()` sends
the Kitty graphics query, the cell-size query and Device Attributes together (every terminal answers DA,
so its answer ends the wait), and textual-image is imported later, off the UI thread, with these answers.
"""

import fcntl
import os
import re
import select
import struct
import sys
import termios
import threading
import time
from dataclasses import dataclass

_QUERIES = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" + b"\x1b[16t" + b"\x1b[c"
_DA1 = re.compile(rb"\x1b\[\?([\d;]*)c")
_CELL = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
_KITTY_OK = re.compile(rb"\x1b_Gi=31;OK")
_TIMEOUT_S = 0.3


@dataclass(frozen=True)
class Graphics:
    protocol: str  # "sixel", "kitty" or "halfcell"
    cell: tuple[int, int]  # cell width and height in pixels


_found = Graphics("halfcell", (10, 20))
_import_lock = threading.Lock()


def probe() -> Graphics:
    """Ask the terminal (only when stdin and stdout are one); remember and return the answer."""
    global _found
    if not (sys.__stdin__ and sys.__stdout__ and sys.__stdin__.isatty() and sys.__stdout__.isatty()):
        return _found
    fd_in, fd_out = sys.__stdin__.fileno(), sys.__stdout__.fileno()
    saved = termios.tcgetattr(fd_in)
    quiet = termios.tcgetattr(fd_in)
    quiet[3] &= ~(termios.ICANON | termios.ECHO)
    answer = b""
    try:
        termios.tcsetattr(fd_in, termios.TCSANOW, quiet)
        sys.__stdout__.flush()
        os.write(fd_out, _QUERIES)
        deadline = time.monotonic() + _TIMEOUT_S
        while not _DA1.search(answer) and (left := deadline - time.monotonic()) > 0:
            if select.select([fd_in], [], [], left)[0]:
                answer += os.read(fd_in, 4096)
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
    _found = Graphics(_protocol(answer), _cell_size(answer, fd_out))
    return _found


def _protocol(answer: bytes) -> str:
    # Sixel before Kitty, as textual-image does: some terminals claim Kitty graphics but draw only Sixel.
    attributes = _DA1.search(answer)
    if attributes and b"4" in attributes.group(1).split(b";"):
        return "sixel"
    return "kitty" if _KITTY_OK.search(answer) else "halfcell"


def _cell_size(answer: bytes, fd: int) -> tuple[int, int]:
    found = _CELL.search(answer)
    if found:
        return int(found.group(2)), int(found.group(1))
    try:
        rows, cols, width, height = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return _found.cell
    return (width // cols, height // rows) if width and height and cols and rows else _found.cell


class _NotATerminal:
    """Stands in for sys.__stdout__ while textual-image imports, so it skips its own questions."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def image_widget():
    """The textual-image widget class for this terminal. Call it from a worker first: the import is slow."""
    with _import_lock:
        if "textual_image.widget" not in sys.modules:
            import textual_image._terminal as terminal

            terminal.get_cell_size._result = terminal.CellSize(*_found.cell)
            real = sys.__stdout__
            sys.__stdout__ = _NotATerminal(real)
            try:
                import textual_image.widget  # noqa: F401
            finally:
                sys.__stdout__ = real
    widgets = sys.modules["textual_image.widget"]
    return {"sixel": widgets.SixelImage, "kitty": widgets.TGPImage}.get(_found.protocol, widgets.HalfcellImage)
