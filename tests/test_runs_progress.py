"""Progress output: plain lines off a terminal, a bar on one, nothing when quiet; the log always."""
import io

import pytest

from sparseseq_cli.progress import Progress


def _drive(progress):
    with progress.bar("epoch 1", total=3) as bar:
        for _ in range(3):
            bar.advance()
        progress.status("| epoch   1 |     2/    3 batches | loss  4.00")
    progress.line("| end of epoch   1 | valid ppl    50.00")


def test_plain_lines_when_not_a_terminal():
    stream, logged = io.StringIO(), []
    _drive(Progress(stream=stream, log=logged.append))
    assert stream.getvalue().splitlines() == logged == [
        "| epoch   1 |     2/    3 batches | loss  4.00", "| end of epoch   1 | valid ppl    50.00"]


def test_quiet_prints_nothing_but_logs_everything():
    stream, logged = io.StringIO(), []
    _drive(Progress(stream=stream, log=logged.append, quiet=True))
    assert stream.getvalue() == "" and len(logged) == 2


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so rich draws its bar into it."""

    def isatty(self):
        return True


@pytest.fixture
def terminal(monkeypatch):
    # rich also asks the environment whether to draw (TERM=dumb in some CI): an ordinary terminal
    monkeypatch.setenv("TERM", "xterm")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return Terminal()


def test_terminal_gets_a_bar_and_the_epoch_line(terminal):
    stream, logged = terminal, []
    _drive(Progress(stream=stream, log=logged.append))
    shown = stream.getvalue()
    assert "3/3" in shown and "━" in shown   # only the bar draws a count and bar characters
    # the periodic line is the bar's status (edges stripped), not a line of its own
    assert "epoch   1 |     2/    3 batches | loss  4.00" in shown and "| epoch   1 |" not in shown
    assert "| end of epoch   1 | valid ppl    50.00" in shown
    assert len(logged) == 2  # the periodic line reaches the log even when it only updates the bar


def test_download_bar_on_a_terminal(terminal):
    with Progress(stream=terminal).transfer("label.tgz") as transfer:
        for done in range(0, 1_000_001, 100_000):
            transfer.update(done, 1_000_000)
    text = terminal.getvalue()
    assert "label.tgz" in text and "\x1b[" in text  # drawn with terminal control codes


def test_download_lines_off_a_terminal():
    stream = io.StringIO()
    with Progress(stream=stream).transfer("data.bin") as transfer:
        for done in range(0, 1_000_001, 50_000):
            transfer.update(done, 1_000_000)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "data.bin:   0% 0.0 of 1.0 MB" and lines[-1] == "data.bin: 100% 1.0 of 1.0 MB"
    assert len(lines) == 11   # one per 10%
    quiet = io.StringIO()
    with Progress(stream=quiet, quiet=True).transfer("data.bin") as transfer:
        transfer.update(1_000_000, 1_000_000)
    assert quiet.getvalue() == ""
