"""HTTP downloads that survive bad networks: .part files, Range resume, timeouts, retries.

``fetch(url, target)`` streams into ``target.part`` and renames it to ``target`` only when
the byte count matches the server's. A cut connection, a timeout or a 5xx answer is
retried with exponential backoff, resuming from the bytes already in the .part file (HTTP
Range); a .part left by an earlier interrupted run is resumed the same way. Progress goes
to stderr: a rich bar on a terminal, plain lines otherwise (logs, CI, nohup).
"""
from __future__ import annotations

import http.client
import platform
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from sparseseq_cli.corpora.integrity import DataError


@dataclass(frozen=True)
class DownloadPolicy:
    timeout_s: float = 30.0  # per connection attempt and per read
    attempts: int = 5  # tries in all, the first included
    backoff_s: float = 1.0  # wait before the second try; doubles after each failure
    chunk_bytes: int = 1 << 16


def _user_agent() -> str:
    # Some servers (WikiText's among them) refuse Python-urllib's default agent.
    try:
        version = metadata.version("sparseseq")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        version = "unknown"
    return f"sparseseq/{version} (dataset downloader; Python {platform.python_version()})"


USER_AGENT = _user_agent()


class _Retry(Exception):
    """A failure worth another try (network, timeout, cut connection, 5xx)."""


# ---- progress ---------------------------------------------------------------------------


class _PlainTask:
    """One line per 10% (or per 5 MB when the size is unknown), for logs."""

    def __init__(self, label: str, stream: TextIO):
        self.label, self.stream = label, stream
        self.total: int | None = None
        self.next_mark = 0

    def update(self, done: int, total: int | None) -> None:
        self.total = total
        step = total // 10 if total else 5 << 20
        if done < self.next_mark or step <= 0:
            return
        self.next_mark = (done // step + 1) * step
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        share = f" {100 * done // total:3d}%" if total else ""
        print(f"{self.label}:{share} {size}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _RichTask:
    def __init__(self, label: str, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task(label, total=None)
        self.progress.start()

    def update(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        self.progress.stop()


class _SilentTask:
    def update(self, done: int, total: int | None) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class ProgressDisplay:
    """Chooses how download progress is shown: bar on a terminal, lines otherwise."""

    quiet: bool = False
    console: Console | None = None  # default: stderr

    def task(self, label: str):
        if self.quiet:
            return _SilentTask()
        console = self.console or Console(stderr=True)
        if console.is_terminal:
            return _RichTask(label, console)
        return _PlainTask(label, console.file)


# ---- the download -----------------------------------------------------------------------


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch(
    url: str,
    target: Path,
    policy: DownloadPolicy | None = None,
    display: ProgressDisplay | None = None,
    label: str | None = None,
) -> Path:
    """Download ``url`` to ``target`` through ``target.part``; return ``target``.

    ``label`` names the download in the progress display (default: the target's name).

    Raises DataError naming the address when every attempt failed; the .part file is
    kept (when it holds bytes) so that the next run resumes.
    """
    policy = policy or DownloadPolicy()
    display = display or ProgressDisplay()
    part = part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    task = display.task(label or target.name)
    try:
        for attempt in range(1, policy.attempts + 1):
            try:
                _stream(url, part, policy, task)
                break
            except _Retry as err:
                if attempt == policy.attempts:
                    if part.exists() and part.stat().st_size == 0:
                        part.unlink()
                    raise DataError(
                        f"cannot download {url}: {err} (gave up after {attempt} attempts)"
                    ) from None
                time.sleep(policy.backoff_s * 2 ** (attempt - 1))
    finally:
        task.close()
    part.replace(target)
    return target


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _stream(url: str, part: Path, policy: DownloadPolicy, task) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=policy.timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            if err.headers.get("Content-Range", "") == f"bytes */{have}":
                return  # an earlier run got every byte but stopped before the rename
            # The .part is not a prefix of what the server holds now: start over.
            part.unlink()
            raise _Retry("the partial download did not match the server's file") from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retry(f"server error HTTP {err.code} {err.reason}") from None
        raise DataError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _Retry(f"cannot reach the server ({err.reason})") from None
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets before headers
        raise _Retry(f"connection failed ({err or type(err).__name__})") from None

    with response:
        start = 0
        if have and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            start = int(match.group(1)) if match else -1
            if start != have:  # an answer we cannot append: restart from zero
                part.unlink()
                raise _Retry("the server answered the resume request with another range")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        done = start
        task.update(done, total)
        with open(part, "ab" if start else "wb") as out:
            while True:
                try:
                    chunk = response.read(policy.chunk_bytes)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retry(f"connection cut after {done} bytes ({type(err).__name__})") from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                task.update(done, total)
    if total is not None and done != total:
        raise _Retry(f"connection cut after {done} of {total} bytes")
