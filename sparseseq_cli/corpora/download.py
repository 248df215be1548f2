"""HTTP downloads that survive bad networks: .part files, Range resume, timeouts, retries.

``fetch(url, target)`` streams into ``target.part`` and renames it to ``target`` only when
the byte count matches the server's. A cut connection, a timeout or a 5xx answer is
retried with exponential backoff, resuming from the bytes already in the .part file (HTTP
Range); a .part left by an earlier interrupted run is resumed the same way. Progress goes
through :class:`~sparseseq_cli.progress.Progress` (a bar on a terminal, plain lines otherwise).

Two things are refused outright, not retried: a download that passes its size cap (counted
as the bytes come, so an endless answer stops at the cap; the .part is deleted), and a
redirect to anything but http:// or https:// (urllib would follow one to ftp://).
"""
from __future__ import annotations

import http.client
import platform
import re
import time
import urllib.error
import urllib.parse
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


_SCHEMES = ("http", "https")


class _WebRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) addresses only: a mirror has no business sending us to
    ftp:// (which urllib would follow) or file:// (which it refuses with a confusing error)."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location)
            if urllib.parse.urlsplit(target).scheme.lower() not in _SCHEMES:
                fp.close()
                raise DataError(f"cannot download {req.full_url}: the server redirects to {target!r}; "
                                f"only http:// and https:// addresses are followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_WebRedirectsOnly)


# ---- the download -----------------------------------------------------------------------


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch(
    url: str,
    target: Path,
    policy: DownloadPolicy | None = None,
    progress: Progress | None = None,
    label: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``target`` through ``target.part``; return ``target``.

    ``label`` names the download in the progress output (default: the target's name);
    ``max_bytes`` is the most it may hold (None: no cap).

    Raises DataError naming the address when every attempt failed; the .part file is
    kept (when it holds bytes) so that the next run resumes. Passing ``max_bytes`` is a
    DataError at once, and the .part is deleted.
    """
    if urllib.parse.urlsplit(url).scheme.lower() not in _SCHEMES:
        raise DataError(f"cannot download {url}: only http:// and https:// addresses are used")
    policy = policy or DownloadPolicy()
    progress = progress or Progress()
    part = part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with progress.transfer(label or target.name) as transfer:
        for attempt in range(1, policy.attempts + 1):
            try:
                _stream(url, part, policy, transfer, max_bytes)
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


def _too_large(url: str, max_bytes: int, why: str) -> DataError:
    return DataError(f"cannot download {url}: {why} more than {max_bytes:,} bytes, far more than the "
                     f"real file; refused, nothing kept")


def _stream(url: str, part: Path, policy: DownloadPolicy, transfer, max_bytes: int | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    if max_bytes is not None and have > max_bytes:  # left by a run without the cap: not worth resuming
        part.unlink()
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _OPENER.open(request, timeout=policy.timeout_s)
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
        total = start + int(length) if length is not None and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            part.unlink(missing_ok=True)
            raise _too_large(url, max_bytes, "the server announces")
        done = start
        transfer.update(done, total)
        over = False
        with open(part, "ab" if start else "wb") as out:
            while True:
                try:
                    chunk = response.read(policy.chunk_bytes)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retry(f"connection cut after {done} bytes ({type(err).__name__})") from None
                if not chunk:
                    break
                if max_bytes is not None and done + len(chunk) > max_bytes:
                    over = True  # counted as it comes: an endless answer stops here
                    break
                out.write(chunk)
                done += len(chunk)
                transfer.update(done, total)
    if over:
        part.unlink()
        raise _too_large(url, max_bytes, "the answer holds")
    if total is not None and done != total:
        raise _Retry(f"connection cut after {done} of {total} bytes")
