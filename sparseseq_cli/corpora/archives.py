"""Safe reading of tar and zip archives: every member is checked before anything is written.

Opening an archive checks all of its members, not only the ones we want, and refuses the
whole archive (naming the member) when one has an absolute path, a ``..`` component, a
link whose target lies outside the extraction folder, or is a device or fifo. Extraction
then takes only the wanted regular files: tar through ``tarfile``'s ``filter="data"`` as a
second line of defence, zip through ``ZipFile.extract`` (which also sanitizes names).
"""
from __future__ import annotations

import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from sparseseq_cli.corpora.integrity import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")


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
                target = archive.read(info).decode("utf-8", "replace")
                if _link_escapes(info.filename, target):
                    raise _refuse(self.path, info.filename, f"links outside the archive ({target})")
                continue  # a link that stays inside: never extracted, never a dataset file
            if not info.is_dir():
                names[_normalize(info.filename)] = info.filename
        return names

    def extract(self, wanted: list[str], folder: Path) -> dict[str, Path]:
        """Extract the regular files ``wanted`` (normalized names) into ``folder``."""
        unknown = [name for name in wanted if name not in self.names]
        if unknown:
            raise DataError(f"archive {self.path.name} has no file {unknown[0]}")
        try:
            if self._tar is not None:
                members = [self._tar.getmember(self.names[name]) for name in wanted]
                # filter="data" (Python >= 3.10.12 / 3.11.4) re-checks what we checked above.
                safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                self._tar.extractall(folder, members=members, **safety)
                return {name: folder / name for name in wanted}
            assert self._zip is not None
            return {name: Path(self._zip.extract(self.names[name], folder)) for name in wanted}
        except tarfile.TarError as err:
            member = getattr(err, "tarinfo", None)  # set by the data filter's FilterError
            if member is not None:
                raise _refuse(self.path, member.name, f"was refused by tarfile ({err})") from None
            raise DataError(f"cannot read archive {self.path}: {err}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise DataError(f"cannot read archive {self.path}: {err}") from None
