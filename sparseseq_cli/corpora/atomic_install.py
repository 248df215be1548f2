"""How getdata installs a dataset folder: built aside, checked, then renamed into place.

Everything is assembled in a temporary folder inside DEST (``DEST/.getdata-*``) and only
renamed into place once it verified, so an interrupted or failed run leaves the installed
data as it was; the only thing a failed run keeps is a partial download under
``DEST/.downloads``, for the next run to resume. Each installed folder gets a ``SHA256SUMS``
file (``sha256sum -c`` format).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sparseseq_cli.errors import SparseseqError

MANIFEST = "SHA256SUMS"
DOWNLOADS = ".downloads"


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
def workspace(dest: Path) -> Iterator[Path]:
    """A temporary folder inside DEST, removed afterwards, with DEST itself if we made it."""
    made = [p for p in (dest, *dest.parents) if not p.exists()]
    try:
        dest.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".getdata-", dir=dest))
    except OSError as err:
        raise SparseseqError(f"cannot write to --dest {dest}: {err.strerror}") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _remove_if_empty(dest / DOWNLOADS)
        for folder in made:  # innermost first
            _remove_if_empty(folder)


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
