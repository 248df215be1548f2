"""Checksums, and the error raised when data cannot be obtained or fails its checks.

Bad input on the command line is a :class:`SparseseqError` (exit status 2). Data that a
server, a mirror or an archive delivered wrong is a different failure: the command was
right, the check failed, so :class:`DataError` exits with status 1, the status of a failed
check. The message is still one line.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from sparseseq_cli.errors import SparseseqError

_CHUNK = 1 << 20


class DataError(SparseseqError):
    """A download failed, a checksum did not match, or an archive member was unsafe."""

    exit_code = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, label: str) -> str:
    """Return the file's SHA-256, or raise naming ``label`` and both hashes."""
    obtained = sha256_file(path)
    if obtained != expected:
        raise DataError(
            f"checksum mismatch for {label}: expected sha256 {expected}, obtained {obtained}"
        )
    return obtained
