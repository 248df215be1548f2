"""SafeArchive: traversal and link attacks in tar and zip are refused, naming the member."""
from __future__ import annotations

import re
import tarfile

import pytest

from sparseseq_cli.corpora.archives import SafeArchive
from sparseseq_cli.corpora.integrity import DataError

GOOD = {"pkg/data/a.txt": b"alpha\n", "pkg/b.txt": b"beta\n"}
CAP = 1 << 20  # per extracted file; far above these, so only the size tests meet it


@pytest.fixture
def box(tmp_path):
    """An extraction folder inside a sandbox, so escapes would land in the sandbox."""
    (tmp_path / "out").mkdir()
    return tmp_path


def write(box, name, data):
    path = box / name
    path.write_bytes(data)
    return path


def test_good_archive_extracts_the_wanted_files(box, make_archive):
    archive = write(box, "good.bin", make_archive({"./" + name: data for name, data in GOOD.items()}))
    with SafeArchive(archive) as safe:
        assert sorted(safe.names) == ["pkg/b.txt", "pkg/data/a.txt"]
        paths = safe.extract(["pkg/data/a.txt"], box / "out", CAP)
    assert paths["pkg/data/a.txt"].read_bytes() == b"alpha\n"
    assert not (box / "out" / "pkg" / "b.txt").exists()  # only what was asked for


@pytest.mark.parametrize("evil", ["../evil.txt", "pkg/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_traversal_is_refused(box, make_archive, evil):
    archive = write(box, "evil.bin", make_archive({**GOOD, evil: b"gotcha"}))
    with pytest.raises(DataError, match=re.escape(f"unsafe archive evil.bin: member {evil!r} has an absolute path or '..'")):
        with SafeArchive(archive) as safe:
            safe.extract(sorted(safe.names), box / "out", CAP)
    assert not (box / "evil.txt").exists()
    assert list((box / "out").iterdir()) == []  # refused whole: nothing extracted


@pytest.mark.parametrize(
    "kind, name, target",
    [
        (tarfile.SYMTYPE, "pkg/link", "../../outside"),
        (tarfile.SYMTYPE, "pkg/link", "/etc/passwd"),
        (tarfile.LNKTYPE, "pkg/hard", "../outside"),
        (tarfile.LNKTYPE, "pkg/hard", "/etc/passwd"),
    ],
)
def test_tar_links_escaping_are_refused(box, kind, name, target, make_tar):
    archive = write(box, "links.tgz", make_tar(GOOD, links={name: (kind, target)}))
    with pytest.raises(DataError, match=rf"member '{name}' links outside the archive"):
        SafeArchive(archive)
    assert list((box / "out").iterdir()) == []


def test_tar_link_inside_the_archive_is_allowed_but_never_a_data_file(box, make_tar):
    archive = write(box, "links.tgz", make_tar(GOOD, links={"pkg/data/alias": (tarfile.SYMTYPE, "a.txt")}))
    with SafeArchive(archive) as safe:
        assert "pkg/data/alias" not in safe.names
        with pytest.raises(DataError, match="has no file pkg/data/alias"):
            safe.extract(["pkg/data/alias"], box / "out", CAP)


def test_tar_device_is_refused(box, make_tar):
    archive = write(box, "dev.tgz", make_tar(GOOD, links={"pkg/null": (tarfile.CHRTYPE, "")}))
    with pytest.raises(DataError, match="member 'pkg/null' is a device or fifo"):
        SafeArchive(archive)


@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd"])
def test_zip_symlink_escaping_is_refused(box, target, make_zip):
    archive = write(box, "links.zip", make_zip(GOOD, symlinks={"pkg/link": target}))
    with pytest.raises(DataError, match="member 'pkg/link' links outside the archive"):
        SafeArchive(archive)


def test_not_an_archive(box):
    with pytest.raises(DataError, match="is not a tar or zip archive"):
        SafeArchive(write(box, "plain.txt", b"just text\n"))


def test_truncated_archive(box, make_tar):
    data = make_tar({"pkg/big.txt": bytes(range(256)) * 2000})
    with pytest.raises(DataError, match="cannot read archive"):
        with SafeArchive(write(box, "cut.tgz", data[: len(data) // 2])) as safe:
            safe.extract(sorted(safe.names), box / "out", CAP)
