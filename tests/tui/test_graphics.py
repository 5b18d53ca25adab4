"""The terminal is asked once which image protocol it has; the sample is drawn with that protocol."""

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

import pytest

CHILD = (
    "from loratui.widgets.graphics import probe, image_widget\n"
    "found = probe()\n"
    "drawn_by = image_widget()\n"
    "import textual_image.widget as w\n"
    "kinds = {w.SixelImage: 'SixelImage', w.TGPImage: 'TGPImage', w.HalfcellImage: 'HalfcellImage'}\n"
    "print('RESULT', found.protocol, found.cell[0], found.cell[1], kinds[drawn_by], flush=True)\n"
)
DA1 = b"\x1b[c"


def _probe_in_a_terminal(answers: dict[bytes, bytes]) -> list[str]:
    """Run the probe in a pseudo-terminal that answers queries with `answers`."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", CHILD])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 900, 600))
    seen, deadline = b"", time.monotonic() + 30
    try:
        while b"RESULT" not in seen or not seen.rstrip().endswith(b"Image"):
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 0.05)[0]:
                chunk = os.read(fd, 4096)
                seen += chunk
                for query, answer in answers.items():
                    if query in chunk:
                        os.write(fd, answer)
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    return seen[seen.index(b"RESULT"):].decode().split()[1:]


@pytest.mark.parametrize(("answers", "expected"), [
    ({DA1: b"\x1b[?62;4;22c", b"\x1b[16t": b"\x1b[6;18;9t"}, ["sixel", "9", "18", "SixelImage"]),
    ({b"\x1b_Gi=31": b"\x1b_Gi=31;OK\x1b\\", DA1: b"\x1b[?62;22c"}, ["kitty", "9", "20", "TGPImage"]),
    ({DA1: b"\x1b[?1;2c"}, ["halfcell", "9", "20", "HalfcellImage"]),
    ({}, ["halfcell", "9", "20", "HalfcellImage"]),
], ids=["sixel", "kitty", "plain", "silent"])
def test_probe_picks_the_terminals_image_protocol(answers, expected):
    assert _probe_in_a_terminal(answers) == expected
