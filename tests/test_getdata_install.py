"""getdata for PTB and WikiText-2: verified, atomic, idempotent, offline; via a local server."""
from __future__ import annotations

import json
import re
import tarfile
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.corpora import datasets
from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions
from sparseseq_cli.corpora.download import DownloadPolicy
from sparseseq_cli.corpora.getdata import getdata
from sparseseq_cli.corpora.integrity import DataError
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.progress import Progress

FAST = DownloadPolicy(timeout_s=2.0, attempts=2, backoff_s=0.0)


@pytest.fixture
def server(file_server, ptb_archive, wiki_archive, ptb_text):
    file_server.files["simple-examples.tgz"] = ptb_archive()
    file_server.files["wikitext-2-v1.zip"] = wiki_archive()
    for split, data in ptb_text.items():
        file_server.files[f"raw/ptb.{split}.txt"] = data
    return file_server


@pytest.fixture
def run(getdata_registry):
    """``run(server, dataset="ptb", **options)``: getdata with the registry of ``server``."""
    def run(server, dataset="ptb", **options):
        opts = GetdataOptions(dataset=DatasetName(dataset), **options)
        # the step lines reach stderr, as on the command line
        return getdata(opts, getdata_registry(server), FAST)
    return run


@pytest.fixture
def corrupted_ptb(ptb_archive, ptb_text):
    """``corrupted_ptb()``: simple-examples.tgz with one word of valid.txt changed."""
    def corrupted_ptb():
        return ptb_archive({**ptb_text, "valid": ptb_text["valid"].replace(b"cat", b"cow", 1)})
    return corrupted_ptb


def test_ptb_from_the_archive(server, tmp_path, ptb_text, sha, run):
    [result] = run(server, dest=tmp_path / "data")
    penn = tmp_path / "data" / "penn"
    assert result.status == "installed" and result.path == penn
    assert result.source == server.url("simple-examples.tgz")
    for split, data in ptb_text.items():
        assert (penn / f"{split}.txt").read_bytes() == data
        assert result.files[f"{split}.txt"] == sha(data)
    assert (penn / "SHA256SUMS").read_text().splitlines()[0] == f"{sha(ptb_text['train'])}  train.txt"
    # nothing else left behind: no temporary folder, no download
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["penn"]


def test_mirror_is_the_only_source(server, tmp_path, ptb_archive, run):
    server.files["mirror/simple-examples.tgz"] = ptb_archive()
    [result] = run(server, dest=tmp_path, mirror=server.url("mirror"))
    assert result.source == server.url("mirror/simple-examples.tgz")
    assert [path for path, _ in server.requests] == ["mirror/simple-examples.tgz"]


def test_checksum_mismatch_names_the_file_and_leaves_dest_as_it_was(
        server, tmp_path, ptb_text, sha, snapshot, run, corrupted_ptb):
    run(server, dest=tmp_path)
    before = snapshot(tmp_path)
    server.files["mirror/simple-examples.tgz"] = corrupted_ptb()
    bad = sha(ptb_text["valid"].replace(b"cat", b"cow", 1))
    message = (f"checksum mismatch for ptb valid.txt (simple-examples/data/ptb.valid.txt in "
               f"{server.url('mirror/simple-examples.tgz')}): expected sha256 {sha(ptb_text['valid'])}, obtained {bad}")
    with pytest.raises(DataError, match=re.escape(message)):
        run(server, dest=tmp_path, mirror=server.url("mirror"), force=True)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["penn"]


def test_failed_first_install_creates_nothing(server, tmp_path, run, corrupted_ptb):
    server.files["mirror/simple-examples.tgz"] = corrupted_ptb()
    with pytest.raises(DataError):
        run(server, dest=tmp_path / "new" / "data", mirror=server.url("mirror"))
    assert not (tmp_path / "new").exists()


def test_bad_primary_falls_back_to_the_single_files(server, tmp_path, ptb_text, run, corrupted_ptb):
    server.files["simple-examples.tgz"] = corrupted_ptb()
    [result] = run(server, dest=tmp_path)
    assert result.source.startswith(server.url("raw/ptb.train.txt"))
    assert (tmp_path / "penn" / "valid.txt").read_bytes() == ptb_text["valid"]


def test_every_source_failing_names_them_and_the_offline_path(server, tmp_path, run, corrupted_ptb):
    server.files["simple-examples.tgz"] = corrupted_ptb()
    server.files["raw/ptb.valid.txt"] = b"not it\n"
    with pytest.raises(DataError) as caught:
        run(server, dest=tmp_path)
    message = str(caught.value)
    assert "checksum mismatch for ptb valid.txt" in message and "raw/ptb.valid.txt" in message
    assert message.endswith("download simple-examples.tgz on another machine and pass --from FILE")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_on_the_next_run(server, tmp_path, ptb_archive, run):
    server.files["m/simple-examples.tgz"] = ptb_archive()
    server.cuts["m/simple-examples.tgz"] = [100, 100]  # both attempts of the first run cut
    with pytest.raises(DataError, match="connection cut"):
        run(server, dest=tmp_path, mirror=server.url("m"))
    [part] = (tmp_path / ".downloads").iterdir()  # only the partial download is kept
    assert part.name.endswith("simple-examples.tgz.part") and part.stat().st_size == 200
    run(server, dest=tmp_path, mirror=server.url("m"))
    assert server.requests[-1][1]["Range"] == "bytes=200-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["penn"]


def test_partial_download_of_a_failed_source_is_dropped_after_install(server, tmp_path, run):
    server.cuts["simple-examples.tgz"] = [100, 100]
    [result] = run(server, dest=tmp_path)
    assert "raw/ptb.train.txt" in result.source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["penn"]

def test_unreachable_names_the_address_and_from(
        tmp_path, closed_port_url, getdata_registry, closed_file_server):
    reg = getdata_registry(closed_file_server)
    dead = closed_port_url("simple-examples.tgz")
    files = tuple(replace(f, url=closed_port_url(f.member)) for f in reg["ptb"].files)
    reg["ptb"] = replace(reg["ptb"], urls=(dead,), files=files)
    opts = GetdataOptions(dataset=DatasetName.ptb, dest=tmp_path)
    with pytest.raises(DataError, match=rf"cannot download {re.escape(dead)}: cannot reach the server.*pass --from FILE"):
        getdata(opts, reg, FAST, Progress(quiet=True))
    assert list(tmp_path.iterdir()) == []


def test_second_run_does_nothing_and_force_redoes_it(server, tmp_path, capsys, ptb_text, sha, run):
    run(server, dest=tmp_path)
    requests = len(server.requests)
    [again] = run(server, dest=tmp_path)
    assert again.status == "already installed" and again.files["train.txt"] == sha(ptb_text["train"])
    assert len(server.requests) == requests  # no download
    [forced] = run(server, dest=tmp_path, force=True)
    assert forced.status == "installed" and len(server.requests) == requests + 1


def test_existing_folder_that_does_not_verify_needs_force(server, tmp_path, ptb_text, run):
    (tmp_path / "penn").mkdir()
    (tmp_path / "penn" / "train.txt").write_text("mine\n")
    (tmp_path / "penn" / "valid.txt").write_text("mine\n")
    (tmp_path / "penn" / "test.txt").write_text("mine\n")
    with pytest.raises(SparseseqError, match=r"penn exists but does not hold verified ptb files \(train.txt has sha256"):
        run(server, dest=tmp_path)
    run(server, dest=tmp_path, force=True)
    assert (tmp_path / "penn" / "train.txt").read_bytes() == ptb_text["train"]


def test_from_an_archive_offline(tmp_path, ptb_text, ptb_archive, getdata_registry, closed_file_server):
    archive = tmp_path / "my-copy.tgz"
    archive.write_bytes(ptb_archive())
    reg = getdata_registry(closed_file_server)
    [result] = getdata(GetdataOptions(DatasetName.ptb, dest=tmp_path / "data", source=archive), reg)
    assert result.source == str(archive)
    assert (tmp_path / "data" / "penn" / "test.txt").read_bytes() == ptb_text["test"]


def test_from_a_folder(tmp_path, ptb_text, getdata_registry, closed_file_server):
    folder = tmp_path / "simple-examples" / "data"
    folder.mkdir(parents=True)
    for split, data in ptb_text.items():
        (folder / f"ptb.{split}.txt").write_bytes(data)
    reg = getdata_registry(closed_file_server)
    getdata(GetdataOptions(DatasetName.ptb, dest=tmp_path / "data", source=tmp_path / "simple-examples"), reg)
    assert (tmp_path / "data" / "penn" / "valid.txt").read_bytes() == ptb_text["valid"]


def test_from_a_folder_with_a_wrong_file(tmp_path, ptb_text, getdata_registry, closed_file_server):
    for split, data in ptb_text.items():
        (tmp_path / f"{split}.txt").write_bytes(data if split != "test" else b"other\n")
    reg = getdata_registry(closed_file_server)
    with pytest.raises(DataError, match="checksum mismatch for ptb test.txt"):
        getdata(GetdataOptions(DatasetName.ptb, dest=tmp_path / "data", source=tmp_path), reg)
    assert not (tmp_path / "data").exists()


def test_archive_missing_a_member(server, tmp_path, ptb_text, make_tar, run):
    server.files["simple-examples.tgz"] = make_tar({"simple-examples/data/ptb.train.txt": ptb_text["train"]})
    server.files.pop("raw/ptb.test.txt")
    with pytest.raises(DataError, match=r"has no file simple-examples/data/ptb.valid.txt"):
        run(server, dest=tmp_path)


def test_malicious_archive_writes_nothing_outside_dest(server, tmp_path, ptb_text, make_tar, snapshot, run):
    evil = make_tar(
        {"../../escaped.txt": b"gotcha", **{f"simple-examples/data/ptb.{s}.txt": d for s, d in ptb_text.items()}}
    )
    server.files["mirror/simple-examples.tgz"] = evil
    dest = tmp_path / "a" / "b" / "data"
    with pytest.raises(DataError, match=r"unsafe archive .*member '../../escaped.txt'"):
        run(server, dest=dest, mirror=server.url("mirror"))
    assert snapshot(tmp_path) == {}


def test_wikitext_original_zip(server, tmp_path, wiki_text, sha, run):
    [result] = run(server, "wikitext-2", dest=tmp_path)
    folder = tmp_path / "wikitext-2"
    assert (folder / "train.txt").read_bytes() == wiki_text["train"]
    assert result.files["test.txt"] == sha(wiki_text["test"])
    # the inner hashes, computed from the verified zip, make the second run a no-op
    assert run(server, "wikitext-2", dest=tmp_path)[0].status == "already installed"


def test_wikitext_repackaged_zip_is_refused(server, tmp_path, wiki_text, make_tar, run):
    server.files["mirror/wikitext-2-v1.zip"] = make_tar(
        {f"wikitext-2/wiki.{s}.tokens": d for s, d in wiki_text.items()})
    with pytest.raises(DataError, match="checksum mismatch for wikitext-2-v1.zip .*only the original archive"):
        run(server, "wikitext-2", dest=tmp_path, mirror=server.url("mirror"))
    assert list(tmp_path.iterdir()) == []


def test_wikitext_from_a_folder_is_refused(tmp_path, getdata_registry, closed_file_server):
    reg = getdata_registry(closed_file_server)
    with pytest.raises(SparseseqError, match="can only be installed from the original wikitext-2-v1.zip"):
        getdata(GetdataOptions(DatasetName.wikitext2, dest=tmp_path / "d", source=tmp_path), reg)


def test_all_installs_every_download(server, tmp_path, capsys, run):
    results = run(server, "all", dest=tmp_path)
    assert [r.dataset for r in results] == ["ptb", "wikitext-2"]
    assert "wsj-pos: not downloadable" in capsys.readouterr().err


# ---- the command ------------------------------------------------------------------------


@pytest.fixture
def cli_registry(server, monkeypatch, getdata_registry):
    monkeypatch.setattr(datasets, "DATASETS", getdata_registry(server))
    return server


def test_cli_json_reports_paths_and_hashes(cli_registry, tmp_path, ptb_text, sha):
    result = CliRunner().invoke(app, ["getdata", "ptb", "--dest", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [entry] = report["datasets"]
    assert entry["status"] == "installed" and entry["path"] == str(tmp_path / "penn")
    assert {f["path"]: f["sha256"] for f in entry["files"]} == {
        str(tmp_path / "penn" / f"{s}.txt"): sha(d) for s, d in ptb_text.items()}


def test_cli_mismatch_exits_1_with_one_line(cli_registry, tmp_path, corrupted_ptb):
    cli_registry.files["m/simple-examples.tgz"] = corrupted_ptb()
    result = CliRunner().invoke(app, ["getdata", "ptb", "--dest", str(tmp_path), "--mirror", cli_registry.url("m"), "-q"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: checksum mismatch for ptb valid.txt")


@pytest.mark.parametrize(
    "args, message",
    [
        (["wsj-pos"], "WSJ POS data is LDC-licensed"),
        (["all", "--from", "."], "--from names one dataset's source"),
        (["ptb", "--from", "no/such/file.tgz"], "--from no/such/file.tgz: no such file or folder"),
        (["ptb", "--mirror", "ftp://x/"], "--mirror ftp://x/: give an http:// or https:// base address"),
        (["ptb", "--mirror", "http://x/", "--from", "."], "--from and --mirror name two different sources"),
        (["wsj-pos", "--mirror", "http://x/"], "--mirror does not apply to wsj-pos"),
    ],
)
def test_cli_bad_input_exits_2(cli_registry, tmp_path, args, message):
    result = CliRunner().invoke(app, ["getdata", *args, "--dest", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_cli_from_a_bad_archive_exits_1(cli_registry, tmp_path, make_tar):
    archive = tmp_path / "x.tgz"
    archive.write_bytes(make_tar({"pkg/ok.txt": b"x"}, links={"pkg/l": (tarfile.SYMTYPE, "/etc/passwd")}))
    result = CliRunner().invoke(app, ["getdata", "ptb", "--from", str(archive), "--dest", str(tmp_path / "d")])
    assert result.exit_code == 1 and "member 'pkg/l' links outside the archive" in result.stderr
