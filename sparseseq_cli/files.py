"""Reading and writing files safely: one-line errors for unreadable files, and writes that
a kill cannot leave half done. Imports nothing else of the package, so every layer may use it."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from sparseseq_cli.errors import SparseseqError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions any new file gets
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_text(path: Path, what: str, fix: str) -> str:
    """A UTF-8 text file (a leading byte-order mark dropped), or a one-line error naming
    ``what`` and how to ``fix`` it. Only regular files are read: a FIFO or a device named
    as a data file would block or never end."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise SparseseqError(f"cannot read {what}: not a regular file (a folder, FIFO or device): {fix}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SparseseqError(f"{what} does not exist: {fix}") from None
    except OSError as err:
        raise SparseseqError(f"cannot read {what} ({err.strerror or err.__class__.__name__}): {fix}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise SparseseqError(f"{what} is not UTF-8 text (line {line}, byte {err.start}): "
                             f"convert it to UTF-8") from None


def read_json_object(path: Path, fix: str = "delete the file or rerun that run") -> dict:
    """A JSON file that must hold an object."""
    try:
        data = json.loads(read_text(path, str(path), fix))
    except json.JSONDecodeError as err:
        raise SparseseqError(f"cannot read {path}: {err}; {fix}") from None
    if not isinstance(data, dict):
        raise SparseseqError(f"{path} holds no JSON object; {fix}")
    return data
