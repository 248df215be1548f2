"""HTTP downloads that survive bad networks: .part files, Range resume, timeouts, retries.

``fetch(url, target)`` streams into ``target.part`` and renames it to ``target`` only when
the byte count matches the server's. A cut connection, a timeout or a 5xx answer is
retried with exponential backoff, resuming from the bytes already in the .part file (HTTP
Range); a .part left by an earlier interrupted run is resumed the same way. Progress goes
through :class:`~sparseseq_cli.progress.Progress` (a bar on a terminal, plain lines otherwise).
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

from sparseseq_cli.corpora.integrity import DataError
from sparseseq_cli.progress import Progress


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


# ---- the download -----------------------------------------------------------------------


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch(
    url: str,
    target: Path,
    policy: DownloadPolicy | None = None,
    progress: Progress | None = None,
    label: str | None = None,
) -> Path:
    """Download ``url`` to ``target`` through ``target.part``; return ``target``.

    ``label`` names the download in the progress output (default: the target's name).

    Raises DataError naming the address when every attempt failed; the .part file is
    kept (when it holds bytes) so that the next run resumes.
    """
    policy = policy or DownloadPolicy()
    progress = progress or Progress()
    part = part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with progress.transfer(label or target.name) as transfer:
        for attempt in range(1, policy.attempts + 1):
            try:
                _stream(url, part, policy, transfer)
                break
            except _Retry as err:
                if attempt == policy.attempts:
                    if part.exists() and part.stat().st_size == 0:
                        part.unlink()
                    raise DataError(
                        f"cannot download {url}: {err} (gave up after {attempt} attempts)"
                    ) from None
                time.sleep(policy.backoff_s * 2 ** (attempt - 1))
    part.replace(target)
    return target


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _stream(url: str, part: Path, policy: DownloadPolicy, transfer) -> None:
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
        transfer.update(done, total)
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
                transfer.update(done, total)
    if total is not None and done != total:
        raise _Retry(f"connection cut after {done} of {total} bytes")
