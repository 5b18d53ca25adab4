"""What the training processes died of, as the supervisor reads it from the launcher: a negative return code, or
accelerate's and torchrun's own report in this launch's part of run.log (quick: no training)."""

from loratui.runs.exits import killing_signal, log_size, signal_words

ACCELERATE = ("subprocess.CalledProcessError: Command '['python', '-m', 'engine.train', 'run']' died with "
              "<Signals.SIGKILL: 9>.\n")
TORCHRUN = """engine.train FAILED
------------------------------------------------------------
Failures:
[1]:
  rank      : 1 (local_rank: 1)
  exitcode  : -15 (pid: 4242)
  traceback : Signal 15 (SIGTERM) received by PID 4242
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : -9 (pid: 4241)
  traceback : Signal 9 (SIGKILL) received by PID 4241
"""


def test_the_signal_is_read_from_the_launcher_of_this_launch_only(tmp_path):
    log = tmp_path / "run.log"
    assert killing_signal(1, log) is None and log_size(log) == 0  # no log yet
    log.write_text("an earlier launch\n" + ACCELERATE)
    start = log_size(log)
    assert killing_signal(1, log) == 9
    assert killing_signal(1, log, start) is None  # what an earlier launch printed is not this one's end
    assert killing_signal(0, log) is None  # a clean exit was killed by nothing
    with open(log, "a") as handle:
        handle.write("Traceback ...\nsubprocess.CalledProcessError: ... returned non-zero exit status 1.\n")
    assert killing_signal(1, log, start) is None  # a training process that raised was not killed
    with open(log, "a") as handle:
        handle.write(TORCHRUN)
    assert killing_signal(1, log, start) == 9  # the root cause, not the rank torchrun stopped on the way
    assert killing_signal(-15, log, start) == 15  # the launcher itself was killed
    assert signal_words(9) == "signal 9 (SIGKILL)" and signal_words(200) == "signal 200"
