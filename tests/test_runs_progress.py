"""Progress output: plain lines off a terminal, a bar on one, nothing when quiet; the log always."""
import io

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


def test_terminal_gets_a_bar_and_the_epoch_line(monkeypatch):
    # rich also asks the environment whether to draw (TERM=dumb in some CI): an ordinary terminal
    monkeypatch.setenv("TERM", "xterm")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    stream, logged = Terminal(), []
    _drive(Progress(stream=stream, log=logged.append))
    shown = stream.getvalue()
    assert "3/3" in shown and "━" in shown   # only the bar draws a count and bar characters
    # the periodic line is the bar's status (edges stripped), not a line of its own
    assert "epoch   1 |     2/    3 batches | loss  4.00" in shown and "| epoch   1 |" not in shown
    assert "| end of epoch   1 | valid ppl    50.00" in shown
    assert len(logged) == 2  # the periodic line reaches the log even when it only updates the bar
