"""How getdata installs a dataset folder: built aside, checked, then renamed into place.

Everything is assembled in a temporary work folder inside DEST (``DEST/.getdata-*``) and
only renamed into place once it verified, so an interrupted or failed run leaves the
installed data as it was; the only thing a failed run keeps is a partial download under
``DEST/.downloads``, for the next run to resume. Each installed folder gets a ``SHA256SUMS``
file (``sha256sum -c`` format).

A run holds DEST (:func:`hold_dest`) with an advisory lock (:class:`~sparseseq_cli.files.FileLock`)
on ``DEST/.getdata.lock``, so a second getdata into the same DEST stops with one line
instead of mixing its files in. The kernel drops the lock when the process dies, even by
SIGKILL, so it never goes stale; a work folder a killed run left behind is therefore safe to
delete by the next run that holds the lock, and is.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import FileLock
from sparseseq_cli.progress import Progress


MANIFEST = "SHA256SUMS"
DOWNLOADS = ".downloads"
WORK_PREFIX = ".getdata-"  # the work folders' names; nothing else in DEST starts so
LOCK = ".getdata.lock"
_LOCK_TRIES = 20  # each retry means another run let go of DEST just then: a few suffice


@dataclass
class Installed:
    """One dataset's outcome, as printed by --json."""

    dataset: str
    path: Path
    status: str  # "installed" or "already installed"
    source: str
    files: dict[str, str]  # file name -> sha256
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "path": str(self.path),
            "status": self.status,
            "source": self.source,
            "files": [
                {"path": str(self.path / name), "sha256": digest, "bytes": (self.path / name).stat().st_size}
                for name, digest in self.files.items()
            ],
            "notes": self.notes,
        }


@contextmanager
def hold_dest(dest: Path, progress: Progress) -> Iterator[None]:
    """Make DEST, hold its lock, and delete the work folders interrupted runs left in it.

    Afterwards the lock file, an empty ``.downloads`` and the folders made here (when
    empty) are removed again. A second getdata holding DEST is a one-line SparseseqError.
    """
    made = [p for p in (dest, *dest.parents) if not p.exists()]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SparseseqError(f"cannot write to --dest {dest}: {err.strerror}") from None
    lock = _acquire(dest, progress)
    try:
        if lock is not None:
            _remove_stale_work(dest, progress)
        yield
    finally:
        _remove_if_empty(dest / DOWNLOADS)
        if lock is not None:
            (dest / LOCK).unlink(missing_ok=True)  # while still locked: see _acquire
        for folder in made:  # innermost first
            _remove_if_empty(folder)
        if lock is not None:
            lock.release()


def _acquire(dest: Path, progress: Progress) -> FileLock | None:
    """DEST's lock, held; None where advisory locks are not available."""
    if not FileLock.available:   # Windows: getdata runs unlocked and leaves old work folders alone
        return None
    path, pid = dest / LOCK, str(os.getpid())
    for _ in range(_LOCK_TRIES):
        lock = FileLock(path)
        if not lock.acquire(f"getdata's --dest {dest}"):  # held elsewhere: "... in use by process PID"
            progress.line(f"note: cannot lock {path} (its file system has no locks); not guarding {dest} "
                          f"against a second getdata, and leaving any old {WORK_PREFIX}* folders alone")
            return None
        # A run deletes the lock file before letting go of it, so the file locked here may
        # already be gone from DEST, and another run free to lock a new one. The lock
        # counts only if the file at ``path`` is the one locked: the one holding our pid.
        try:
            if pid in re.findall(r"\d+", path.read_text(encoding="ascii", errors="replace")):
                return lock
        except FileNotFoundError:
            pass
        lock.release()
    raise SparseseqError(f"cannot lock {path}: other getdata runs keep replacing it; try again")


def _remove_stale_work(dest: Path, progress: Progress) -> None:
    """Work folders in a DEST we hold the lock of belong to runs that died (a kill, a crash)."""
    stale = sorted(p for p in dest.iterdir()
                   if p.name.startswith(WORK_PREFIX) and p.is_dir() and not p.is_symlink())
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    if stale:
        progress.line(f"removed {len(stale)} work folder(s) an interrupted getdata left in {dest}: "
                      f"{', '.join(p.name for p in stale)}")


@contextmanager
def workspace(dest: Path) -> Iterator[Path]:
    """A temporary work folder inside DEST (held with :func:`hold_dest`), removed afterwards."""
    try:
        work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=dest))
    except OSError as err:
        raise SparseseqError(f"cannot write to --dest {dest}: {err.strerror}") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or not there: keep it
        pass


def put_in_place(new: Path, final: Path, work: Path) -> None:
    """Rename ``new`` to ``final``; a previous ``final`` goes to ``work`` (then deleted)."""
    if final.exists() or final.is_symlink():
        previous = work / "previous"
        os.replace(final, previous)
        try:
            os.replace(new, final)
        except OSError:
            os.replace(previous, final)
            raise
    else:
        os.replace(new, final)


def write_manifest(folder: Path, hashes: dict[str, str]) -> None:
    (folder / MANIFEST).write_text("".join(f"{h}  {name}\n" for name, h in hashes.items()), encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, str]:
    """File name -> sha256 as ``folder``'s SHA256SUMS records them ({} when there is none)."""
    try:
        lines = (folder / MANIFEST).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return {name: digest for digest, _, name in (line.partition("  ") for line in lines if line)}
