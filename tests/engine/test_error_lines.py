"""What the faces show of a library's error (one line), and where a bug's traceback goes (a file)."""

from engine.errors import first_line, save_traceback


def test_first_line_is_the_messages_first_line_cut_or_the_types_name():
    assert first_line(ValueError("bad shape\n  at layer 3")) == "bad shape"
    assert first_line(ValueError("  \n")) == "ValueError"
    assert first_line(OSError("x" * 500), 160) == "x" * 160


def test_a_bugs_traceback_is_saved_in_the_logs_folder_or_where_asked(loratui_home, tmp_path):
    try:
        raise KeyError("lost")
    except KeyError as exc:
        logged, placed = save_traceback(exc, prefix="dashboard"), save_traceback(exc, tmp_path / "tb.log")
    assert logged.startswith(str(loratui_home / "logs" / "dashboard-")) and placed == str(tmp_path / "tb.log")
    for path in (logged, placed):
        text = open(path).read()
        assert text.startswith("Traceback") and "KeyError: 'lost'" in text and "raise KeyError" in text
