"""getdata against hostile sources and interrupted runs: size caps while downloading and
extracting, the DEST lock, stale work folders, redirects; a local server only.

The caps are lowered in each test (a replaced registry entry, a monkeypatched constant), so
the archives stay small.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.corpora import archives, datasets
from sparseseq_cli.corpora.archives import SafeArchive
from sparseseq_cli.corpora.atomic_install import LOCK
from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions
from sparseseq_cli.corpora.download import DownloadPolicy, fetch, part_path
from sparseseq_cli.corpora.getdata import getdata
from sparseseq_cli.corpora.integrity import DataError
from sparseseq_cli.progress import Progress

FAST = DownloadPolicy(timeout_s=2.0, attempts=3, backoff_s=0.0, chunk_bytes=1 << 14)
QUIET = Progress(quiet=True)
ENDLESS = bytes(32 << 20)  # "endless" to a client capped far below it


def _wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- size caps: downloads ---------------------------------------------------------------------

def test_endless_answer_stops_at_the_cap_and_leaves_no_part(file_server, tmp_path):
    file_server.files["endless.tgz"] = ENDLESS
    file_server.unsized.add("endless.tgz")  # no Content-Length: only counting can stop it
    target = tmp_path / "endless.tgz"
    with pytest.raises(DataError, match=r"the answer holds more than 100,000 bytes.*refused, nothing kept"):
        fetch(file_server.url("endless.tgz"), target, FAST, QUIET, max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []
    assert len(file_server.requests) == 1  # refused, not retried
    # the client hung up at the cap: the server could not send the rest
    _wait_for(lambda: file_server.server_errors)
    assert file_server.sent["endless.tgz"] < len(ENDLESS) // 2


def test_announced_size_over_the_cap_is_refused_before_downloading(file_server, tmp_path):
    file_server.files["big.tgz"] = bytes(300_000)
    with pytest.raises(DataError, match=r"the server announces more than 100,000 bytes"):
        fetch(file_server.url("big.tgz"), tmp_path / "big.tgz", FAST, QUIET, max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []


def test_part_over_the_cap_from_an_older_run_is_started_afresh(file_server, tmp_path):
    file_server.files["data.bin"] = b"x" * 1000
    target = tmp_path / "data.bin"
    part_path(target).write_bytes(b"y" * 5000)
    fetch(file_server.url("data.bin"), target, FAST, QUIET, max_bytes=2000)
    assert target.read_bytes() == b"x" * 1000
    assert "Range" not in file_server.requests[0][1]


def test_getdata_refuses_an_endless_mirror_and_keeps_nothing(file_server, getdata_registry, tmp_path):
    file_server.files["m/simple-examples.tgz"] = ENDLESS
    file_server.unsized.add("m/simple-examples.tgz")
    registry = getdata_registry(file_server)
    registry["ptb"] = replace(registry["ptb"], max_archive_bytes=200_000)
    options = GetdataOptions(DatasetName.ptb, dest=tmp_path / "data", mirror=file_server.url("m"))
    with pytest.raises(DataError, match=r"simple-examples.tgz: the answer holds more than 200,000 bytes"):
        getdata(options, registry, FAST, QUIET)
    assert list(tmp_path.iterdir()) == []


def test_single_file_fallback_is_capped_per_file(file_server, getdata_registry, ptb_text, tmp_path):
    registry = getdata_registry(file_server)  # no archive served: the per-file fallback is used
    registry["ptb"] = replace(registry["ptb"], max_member_bytes=len(ptb_text["train"]) - 1)
    for split, data in ptb_text.items():
        file_server.files[f"raw/ptb.{split}.txt"] = data
    with pytest.raises(DataError, match=r"raw/ptb.train.txt: the server announces more than"):
        getdata(GetdataOptions(DatasetName.ptb, dest=tmp_path), registry, FAST, QUIET)
    assert list(tmp_path.iterdir()) == []


# ---- size caps: extraction -----------------------------------------------------------------

def test_ptb_member_over_its_cap_stops_extraction(file_server, getdata_registry, ptb_archive, tmp_path):
    archive = tmp_path / "copy.tgz"
    archive.write_bytes(ptb_archive())
    registry = getdata_registry(file_server)
    registry["ptb"] = replace(registry["ptb"], max_member_bytes=1000)
    options = GetdataOptions(DatasetName.ptb, dest=tmp_path / "data", source=archive)
    with pytest.raises(DataError, match=r"member 'simple-examples/data/ptb.train.txt' unpacks to more than "
                                        r"1,000 bytes.*stopped, nothing was kept"):
        getdata(options, registry, FAST, QUIET)
    assert not (tmp_path / "data").exists()


def test_wikitext_member_over_its_cap_stops_extraction(file_server, getdata_registry, wiki_archive, tmp_path):
    archive = tmp_path / "wikitext-2-v1.zip"
    archive.write_bytes(wiki_archive())
    registry = getdata_registry(file_server)
    registry["wikitext-2"] = replace(registry["wikitext-2"], max_member_bytes=500)
    options = GetdataOptions(DatasetName.wikitext2, dest=tmp_path / "data", source=archive)
    with pytest.raises(DataError, match=r"member 'wikitext-2/wiki.train.tokens' unpacks to more than 500 bytes"):
        getdata(options, registry, FAST, QUIET)
    assert not (tmp_path / "data").exists()


def _bomb(path, members):
    """A zip of highly compressible members (name -> size in bytes of tagged lines)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, size in members.items():
            archive.writestr(name, (b"the\tDT\n" * (size // 7 + 1))[:size])
    return path


def test_wsj_zip_bomb_stops_at_the_member_cap(monkeypatch, tmp_path):
    # the audit's case: a small zip whose one file unpacks to far more than any WSJ file
    bomb = _bomb(tmp_path / "treebank.zip", {"train.conll": 3_000_000})
    assert bomb.stat().st_size < 30_000
    monkeypatch.setattr(datasets, "WSJ_MAX_MEMBER_BYTES", 1_000_000)
    options = GetdataOptions(DatasetName.wsj_pos, dest=tmp_path / "data", source=bomb)
    with pytest.raises(DataError, match=r"treebank.zip: member 'train.conll' unpacks to more than 1,000,000 bytes"):
        getdata(options, progress=QUIET)
    assert not (tmp_path / "data").exists()


def test_wsj_zip_of_many_files_stops_at_the_total_cap(monkeypatch, tmp_path):
    bomb = _bomb(tmp_path / "treebank.zip", {f"wsj_00{i:02d}.mrg": 400_000 for i in range(10)})
    monkeypatch.setattr(datasets, "WSJ_MAX_TOTAL_BYTES", 1_000_000)
    options = GetdataOptions(DatasetName.wsj_pos, dest=tmp_path / "data", source=bomb)
    with pytest.raises(DataError, match=r"its files unpack to more than 1,000,000 bytes in all"):
        getdata(options, progress=QUIET)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_member_is_counted_as_it_streams(tmp_path, make_tar, make_zip, monkeypatch, kind):
    # The declared size is checked first; this shows the byte count alone also stops it.
    monkeypatch.setattr(archives._Budget, "check_declared", lambda self, name, size: None)
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes((make_tar if kind == "tar" else make_zip)({"pkg/big.txt": b"z" * (3 << 20)}))
    out = tmp_path / "out"
    with SafeArchive(archive) as safe:
        with pytest.raises(DataError, match="member 'pkg/big.txt' unpacks to more than 100 bytes"):
            safe.extract(["pkg/big.txt"], out, 100)
    assert not (out / "pkg" / "big.txt").exists()


def test_zip_link_with_an_oversized_target_is_refused_unread(tmp_path, make_zip):
    archive = tmp_path / "links.zip"
    archive.write_bytes(make_zip({"pkg/a.txt": b"a"}, symlinks={"pkg/link": "x" * 100_000}))
    with pytest.raises(DataError, match="member 'pkg/link' is a link with an oversized target"):
        SafeArchive(archive)


# ---- the DEST lock ---------------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from sparseseq_cli.corpora.atomic_install import hold_dest
from sparseseq_cli.progress import Progress
with hold_dest(Path(sys.argv[1]), Progress(quiet=True)):
    print("holding", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """``holder(dest)``: another process holding DEST as a running getdata does."""
    started = []

    def start(dest):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(dest)], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "holding"
        return proc
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: getdata runs unlocked there")
def test_second_getdata_on_the_same_dest_is_refused_naming_dest_and_pid(file_server, getdata_registry,
                                                                       monkeypatch, holder, tmp_path):
    monkeypatch.setattr(datasets, "DATASETS", getdata_registry(file_server))
    dest = tmp_path / "data"
    proc = holder(dest)
    (dest / ".getdata-busy").mkdir()  # the running getdata's work folder
    result = CliRunner().invoke(app, ["getdata", "ptb", "--dest", str(dest)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: getdata's --dest {dest} is in use by process {proc.pid}: "
                             f"wait for it to end, or stop it first\n")
    assert (dest / ".getdata-busy").is_dir()  # another run's work folder is never touched
    assert file_server.requests == []


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")
def test_lock_of_a_killed_getdata_is_not_stale(file_server, getdata_registry, ptb_archive, holder, tmp_path):
    file_server.files["simple-examples.tgz"] = ptb_archive()
    dest = tmp_path / "data"
    proc = holder(dest)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (dest / LOCK).exists()  # a SIGKILL leaves the file, but the kernel dropped the lock
    [result] = getdata(GetdataOptions(DatasetName.ptb, dest=dest), getdata_registry(file_server), FAST, QUIET)
    assert result.status == "installed"
    assert sorted(p.name for p in dest.iterdir()) == ["penn"]  # lock file removed when done


# ---- stale work folders ----------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: stale folders are left alone there")
def test_work_folder_of_a_getdata_killed_mid_run_is_removed_by_the_next(file_server, getdata_registry,
                                                                       ptb_archive, tmp_path, capsys):
    file_server.files["simple-examples.tgz"] = ptb_archive()
    file_server.files["slow/simple-examples.tgz"] = ptb_archive()
    file_server.delays["slow/simple-examples.tgz"] = [60.0]
    dest = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "sparseseq_cli", "getdata", "ptb", "--dest", str(dest),
                             "--mirror", file_server.url("slow"), "-q"])
    try:
        _wait_for(lambda: file_server.requests and any(p.name.startswith(".getdata-") for p in dest.iterdir()))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    [stale] = [p for p in dest.iterdir() if p.name.startswith(".getdata-")]
    (stale / "unpacked").mkdir(exist_ok=True)
    (stale / "unpacked" / "half.txt").write_bytes(b"x" * 10_000)  # as a kill during extraction leaves it
    # things that are not getdata's work folders stay
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (dest / ".getdata-link").symlink_to(outside, target_is_directory=True)
    (dest / "getdata-notes").mkdir()
    (dest / ".getdata-file").write_text("a file, not a work folder")

    getdata(GetdataOptions(DatasetName.ptb, dest=dest), getdata_registry(file_server), FAST)
    assert not stale.exists()
    assert f"removed 1 work folder(s) an interrupted getdata left in {dest}: {stale.name}" in capsys.readouterr().err
    assert sorted(p.name for p in dest.iterdir()) == [".getdata-file", ".getdata-link", "getdata-notes", "penn"]
    assert (outside / "keep.txt").read_text() == "mine"


# ---- redirects --------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["ftp://127.0.0.1:9/simple-examples.tgz", "file:///etc/passwd"])
def test_redirect_away_from_http_is_refused(file_server, tmp_path, target):
    file_server.redirects["data.bin"] = target
    url = file_server.url("data.bin")
    with pytest.raises(DataError) as caught:
        fetch(url, tmp_path / "data.bin", FAST, QUIET)
    assert str(caught.value) == (f"cannot download {url}: the server redirects to {target!r}; "
                                 f"only http:// and https:// addresses are followed")
    assert len(file_server.requests) == 1  # refused, not retried
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_http_is_followed(file_server, tmp_path):
    file_server.files["new/data.bin"] = b"moved"
    file_server.redirects["data.bin"] = "/new/data.bin"
    assert fetch(file_server.url("data.bin"), tmp_path / "d", FAST, QUIET).read_bytes() == b"moved"


def test_cli_mirror_redirecting_to_ftp_exits_1_with_one_line(file_server, getdata_registry, monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DATASETS", getdata_registry(file_server))
    file_server.redirects["m/simple-examples.tgz"] = "ftp://mirror.example/simple-examples.tgz"
    result = CliRunner().invoke(app, ["getdata", "ptb", "--dest", str(tmp_path / "d"),
                                      "--mirror", file_server.url("m"), "-q"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "redirects to 'ftp://mirror.example/simple-examples.tgz'" in result.stderr
    assert not (tmp_path / "d").exists()


def test_registry_caps_are_ten_times_the_real_sizes():
    ptb, wiki = datasets.DATASETS["ptb"], datasets.DATASETS["wikitext-2"]
    assert ptb.max_archive_bytes == 10 * 34_869_662 and wiki.max_archive_bytes == 10 * 4_475_746
    assert 10 * 5_100_000 <= ptb.max_member_bytes and 10 * 10_800_000 <= wiki.max_member_bytes
    assert max(ptb.max_member_bytes, wiki.max_member_bytes) < 200_000_000
    assert datasets.WSJ_MAX_MEMBER_BYTES < datasets.WSJ_MAX_TOTAL_BYTES
