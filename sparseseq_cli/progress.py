"""What a command shows while it runs: training's lines and bars, downloads' byte counts.

Every line goes to the run's log (``log``: a callable, usually ``RunFolder.log``) in the
original code's format. On screen (stderr, so stdout stays free for results and ``--json``):

- a terminal gets a rich progress bar per pass; the periodic batch lines update the bar's
  status text instead of scrolling, and the other lines print above the bar;
- anything else (CI, ``nohup``, a sweep's log file) gets every line as plain text;
- ``quiet`` shows nothing (errors still reach stderr through the CLI).

The loop calls ``bar.advance()`` once per step: a Python-level counter, no device sync.
A download reports its bytes through ``transfer()``: the same choice of a bar on a terminal
and plain lines (one per 10%) elsewhere.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TextIO

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress as RichProgress,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)


class _Bar:
    def __init__(self, rich: Optional[RichProgress], task_id: int | None):
        self._rich, self._task = rich, task_id

    def advance(self, steps: int = 1) -> None:
        if self._rich is not None:
            self._rich.advance(self._task, steps)

    def status(self, text: str) -> None:
        if self._rich is not None:
            self._rich.update(self._task, status=text)


class _Transfer:
    """One download's byte count: a rich bar, or a line per 10% (per 5 MB when the size is unknown)."""

    def __init__(self, progress: "Progress", label: str, rich: Optional[RichProgress]):
        self._progress, self._label, self._rich = progress, label, rich
        self._task = rich.add_task(label, total=None) if rich is not None else None
        self._next_mark = 0

    def update(self, done: int, total: Optional[int]) -> None:
        """``done`` bytes of ``total`` (None: the server did not say)."""
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=total)
            return
        step = total // 10 if total else 5 << 20
        if done < self._next_mark or step <= 0:
            return
        self._next_mark = (done // step + 1) * step
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        share = f" {100 * done // total:3d}%" if total else ""
        self._progress.line(f"{self._label}:{share} {size}")


class Progress:
    """Screen and log output of one command run."""

    def __init__(self, *, quiet: bool = False, log: Optional[Callable[[str], None]] = None,
                 stream: Optional[TextIO] = None, live: Optional[bool] = None):
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self._log = log
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self._console = Console(file=self.stream) if self.live else None
        self._rich: Optional[RichProgress] = None
        self._bar: Optional[_Bar] = None

    def line(self, text: str) -> None:
        """A line for the log and the screen (above the bar on a terminal)."""
        if self._log is not None:
            self._log(text)
        if self.quiet:
            return
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def status(self, text: str) -> None:
        """A periodic line: the log always, the bar's status on a terminal, plain otherwise."""
        if self._bar is not None and self.live:
            if self._log is not None:
                self._log(text)
            self._bar.status(text.strip("| "))
        else:
            self.line(text)

    @contextmanager
    def bar(self, description: str, total: Optional[int]) -> Iterator[_Bar]:
        """A progress bar for one pass (an epoch, an evaluation); a no-op when not live."""
        if not self.live:
            yield _Bar(None, None)
            return
        self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(),
                                  TextColumn("{task.fields[status]}"),
                                  console=self._console, transient=True)
        with self._rich:
            self._bar = _Bar(self._rich, self._rich.add_task(description, total=total, status=""))
            try:
                yield self._bar
            finally:
                self._bar = None
        self._rich = None

    @contextmanager
    def transfer(self, label: str) -> Iterator[_Transfer]:
        """A download's progress: bytes, speed and time left on a terminal, lines otherwise."""
        if not self.live:
            yield _Transfer(self, label, None)
            return
        # not transient: the finished bar stays on screen as the record of the download
        rich = RichProgress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(), console=self._console)
        with rich:
            yield _Transfer(self, label, rich)
