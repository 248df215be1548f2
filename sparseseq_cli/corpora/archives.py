"""Safe reading of tar and zip archives: every member is checked before anything is written.

Opening an archive checks all of its members, not only the ones we want, and refuses the
whole archive (naming the member) when one has an absolute path, a ``..`` component, a
link whose target lies outside the extraction folder, or is a device or fifo. Extraction
then takes only the wanted regular files, each streamed to disk and counted as it comes: a
file that passes its cap (or files that pass a total cap) stops the extraction at once and
is deleted, so a decompression bomb never fills the disk or memory. Tar members also go
through ``tarfile``'s ``filter="data"`` as a second line of defence.
"""
from __future__ import annotations

import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from sparseseq_cli.corpora.integrity import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20
# A link's target is a path: anything longer is not one, and is never read whole.
_MAX_LINK_BYTES = 4096


def _normalize(name: str) -> str:
    """The member's path relative to the archive root, without "./" prefixes."""
    return posixpath.normpath(name)


def _escapes(path: str) -> bool:
    """True when ``path`` (a member name, or a link target made relative) leaves the root."""
    unified = path.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        return True
    return ".." in unified.split("/")


def _link_escapes(member: str, target: str) -> bool:
    """A symlink's target is relative to the folder that holds the link."""
    unified = target.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member), unified))
    return resolved == ".." or resolved.startswith("../")


def _refuse(archive: Path, member: str, why: str) -> DataError:
    return DataError(f"unsafe archive {archive.name}: member {member!r} {why}; nothing was extracted")


class SafeArchive:
    """A tar or zip archive whose members have all been checked; use as a context manager.

    ``names`` maps each regular file's normalized path to the archive's own member name.
    """

    def __init__(self, path: Path):
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._zip: zipfile.ZipFile | None = None
        try:
            if zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self.names = self._check_zip(self._zip)
            elif tarfile.is_tarfile(path):
                self._tar = tarfile.open(path)
                self.names = self._check_tar(self._tar)
            else:
                raise DataError(f"{path} is not a tar or zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            self.close()
            raise DataError(f"cannot read archive {path}: {err}") from None
        except DataError:
            self.close()
            raise

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for handle in (self._tar, self._zip):
            if handle is not None:
                handle.close()

    def _check_tar(self, tar: tarfile.TarFile) -> dict[str, str]:
        names = {}
        for member in tar.getmembers():
            if _escapes(member.name):
                raise _refuse(self.path, member.name, "has an absolute path or '..'")
            if member.issym() and _link_escapes(member.name, member.linkname):
                raise _refuse(self.path, member.name, f"links outside the archive ({member.linkname})")
            if member.islnk() and _escapes(member.linkname):
                raise _refuse(self.path, member.name, f"links outside the archive ({member.linkname})")
            if member.ischr() or member.isblk() or member.isfifo():
                raise _refuse(self.path, member.name, "is a device or fifo")
            if member.isfile():
                names[_normalize(member.name)] = member.name
        return names

    def _check_zip(self, archive: zipfile.ZipFile) -> dict[str, str]:
        names = {}
        for info in archive.infolist():
            if _escapes(info.filename):
                raise _refuse(self.path, info.filename, "has an absolute path or '..'")
            if stat.S_ISLNK(info.external_attr >> 16):
                if info.file_size > _MAX_LINK_BYTES:
                    raise _refuse(self.path, info.filename, "is a link with an oversized target")
                with archive.open(info) as stream:
                    target = stream.read(_MAX_LINK_BYTES + 1).decode("utf-8", "replace")
                if len(target) > _MAX_LINK_BYTES:
                    raise _refuse(self.path, info.filename, "is a link with an oversized target")
                if _link_escapes(info.filename, target):
                    raise _refuse(self.path, info.filename, f"links outside the archive ({target})")
                continue  # a link that stays inside: never extracted, never a dataset file
            if not info.is_dir():
                names[_normalize(info.filename)] = info.filename
        return names

    def extract(self, wanted: list[str], folder: Path, max_member_bytes: int,
                max_total_bytes: int | None = None) -> dict[str, Path]:
        """Extract the regular files ``wanted`` (normalized names) into ``folder``.

        Each file may hold at most ``max_member_bytes``, all of them ``max_total_bytes``;
        passing either is a DataError, and the file being written is removed.
        """
        unknown = [name for name in wanted if name not in self.names]
        if unknown:
            raise DataError(f"archive {self.path.name} has no file {unknown[0]}")
        budget = _Budget(self.path, max_member_bytes, max_total_bytes)
        paths: dict[str, Path] = {}
        try:
            for name in wanted:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with self._open(name, folder, budget) as source:
                    budget.copy(name, source, target)
                paths[name] = target
        except BaseException as err:
            for path in paths.values():  # all or nothing: a failed extraction leaves no files
                path.unlink(missing_ok=True)
            converted = self._one_line(err, folder)
            if converted is None:
                raise
            raise converted from None
        return paths

    def _one_line(self, err: BaseException, folder: Path) -> DataError | None:
        """The DataError that says what went wrong while extracting (None: not ours to word)."""
        if isinstance(err, tarfile.TarError):
            member = getattr(err, "tarinfo", None)  # set by the data filter's FilterError
            if member is not None:
                return _refuse(self.path, member.name, f"was refused by tarfile ({err})")
            return DataError(f"cannot read archive {self.path}: {err}")
        if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
            return DataError(f"cannot read archive {self.path}: {err}")
        if isinstance(err, OSError):  # e.g. a file and a folder of the same name
            return DataError(f"cannot extract {self.path.name} into {folder}: {err.strerror or err}")
        return None

    def _open(self, name: str, folder: Path, budget: _Budget) -> IO[bytes]:
        """A stream of the member's bytes; a declared size over the cap fails before any is read."""
        if self._tar is not None:
            member = self._tar.getmember(self.names[name])
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: re-checks what we checked
                member = tarfile.data_filter(member, str(folder))
            budget.check_declared(name, member.size)
            stream = self._tar.extractfile(member)
            assert stream is not None  # a regular file: _check_tar listed only those
            return stream
        assert self._zip is not None
        info = self._zip.getinfo(self.names[name])
        budget.check_declared(name, info.file_size)
        return self._zip.open(info)


class _Budget:
    """The bytes extraction may still write: per file and in all, counted as they come
    (a header's declared size is checked first, but a stream is never trusted to match it)."""

    def __init__(self, archive: Path, per_member: int, total: int | None):
        self.archive, self.per_member, self.total = archive, per_member, total
        self.written = 0

    def check_declared(self, name: str, size: int) -> None:
        if size > self.per_member:
            raise self._too_big(name)

    def copy(self, name: str, source: IO[bytes], target: Path) -> None:
        count = 0
        try:
            with open(target, "xb") as out:  # "x": a file already there is never overwritten
                while chunk := source.read(_CHUNK):
                    count += len(chunk)
                    self.written += len(chunk)
                    if count > self.per_member:
                        raise self._too_big(name)
                    if self.total is not None and self.written > self.total:
                        raise DataError(f"archive {self.archive.name}: its files unpack to more than "
                                        f"{self.total:,} bytes in all, far more than the real data; "
                                        f"stopped, nothing was kept")
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def _too_big(self, name: str) -> DataError:
        return DataError(f"archive {self.archive.name}: member {name!r} unpacks to more than "
                         f"{self.per_member:,} bytes, far more than the real file; stopped, nothing was kept")
