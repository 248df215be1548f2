"""Reading and writing files safely: one-line errors for unreadable files, and writes that
a kill cannot leave half done, locks a kill cannot leave behind, JSON without NaN. Imports
only errors.py, so every layer may use it."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

try:
    import fcntl
except ImportError:   # Windows: no advisory locks; run folders are then unguarded
    fcntl = None

from sparseseq_cli.errors import SparseseqError

# A configuration is a few kilobytes; a cap far above that refuses a huge file before it is
# parsed, and refusing aliases (*name) stops "billion laughs" files, where a few hundred
# bytes of nested aliases expand to gigabytes. No sparseseq file uses aliases.
MAX_YAML_BYTES = 1 << 20


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


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted",
                                              event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path, what: str, fix: str) -> Any:
    """A small YAML file (at most MAX_YAML_BYTES, no aliases), parsed safely."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_YAML_BYTES:
        raise SparseseqError(f"{what} is larger than {MAX_YAML_BYTES // 1024} KiB: not a sparseseq "
                             f"configuration; {fix}")
    text = read_text(path, what, fix)
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None)
        why = f" ({problem})" if problem else ""
        raise SparseseqError(f"{what} is not valid YAML{where}{why}: fix the syntax") from None


def read_json_object(path: Path, fix: str = "delete the file or rerun that run") -> dict:
    """A JSON file that must hold an object."""
    try:
        data = json.loads(read_text(path, str(path), fix))
    except json.JSONDecodeError as err:
        raise SparseseqError(f"cannot read {path}: {err}; {fix}") from None
    if not isinstance(data, dict):
        raise SparseseqError(f"{path} holds no JSON object; {fix}")
    return data


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def to_json(record: Any, **kwargs: Any) -> str:
    """JSON text of ``record`` with every non-finite float as null: ``Infinity`` and ``NaN``
    are not JSON, and most readers refuse them."""
    return json.dumps(_finite_or_none(record), allow_nan=False, **kwargs)


class FileLock:
    """An exclusive advisory lock (``flock``) on ``path``, held until :meth:`release` or the
    death of the process: the kernel drops it, so a SIGKILL never leaves a stale lock. The
    file holds the holder's pid, for the message another process gets."""

    available = fcntl is not None   # False on Windows: callers go on unguarded

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, what: str) -> bool:
        """Take the lock, or raise a one-line error naming ``what`` and the holder. False when
        no lock could be taken at all (no fcntl, or a file system without locks): the caller
        then goes on unguarded."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise SparseseqError(f"cannot write to {what} ({err.strerror}): choose a writable "
                                 f"folder") from None
        if fcntl is None:   # no advisory locks on this platform
            os.close(fd)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise SparseseqError(f"{what} is in use by process {holder}: wait for "
                                 f"it to end, or stop it first") from None
        except OSError:   # a file system without locks (some network mounts)
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing the descriptor drops the flock
            self._fd = None
