"""fetch(): .part files, Range resume, retries, timeouts, errors, progress; a local server only."""
from __future__ import annotations

import pytest

from sparseseq_cli.corpora.download import USER_AGENT, DownloadPolicy, fetch, part_path
from sparseseq_cli.corpora.integrity import DataError
from sparseseq_cli.progress import Progress

BODY = bytes(range(256)) * 4000  # ~1 MB, so the plain display prints several lines
FAST = DownloadPolicy(timeout_s=2.0, attempts=3, backoff_s=0.0, chunk_bytes=1 << 14)
QUIET = Progress(quiet=True)


@pytest.fixture
def server(file_server):
    file_server.files["data.bin"] = BODY
    return file_server


def test_download_writes_the_file_and_removes_the_part(server, tmp_path, capsys):
    target = tmp_path / "data.bin"
    assert fetch(server.url("data.bin"), target, FAST) == target
    assert target.read_bytes() == BODY
    assert not part_path(target).exists()
    # off a terminal, progress is plain lines on stderr, ending at 100%
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 5 and all(line.startswith("data.bin:") for line in lines)
    assert "100%" in lines[-1]


def test_sends_a_real_user_agent(server, tmp_path):
    fetch(server.url("data.bin"), tmp_path / "data.bin", FAST, QUIET)
    agent = server.requests[0][1]["User-Agent"]
    assert agent == USER_AGENT and agent.startswith("sparseseq/") and "Python-urllib" not in agent


def test_cut_connection_is_resumed_with_range(server, tmp_path):
    server.cuts["data.bin"] = [300_000]
    target = tmp_path / "data.bin"
    fetch(server.url("data.bin"), target, FAST, QUIET)
    assert target.read_bytes() == BODY
    assert [headers.get("Range") for _, headers in server.requests] == [None, "bytes=300000-"]


def test_part_left_by_an_interrupted_run_is_resumed(server, tmp_path):
    target = tmp_path / "data.bin"
    part_path(target).write_bytes(BODY[:123_456])
    fetch(server.url("data.bin"), target, FAST, QUIET)
    assert target.read_bytes() == BODY
    assert server.requests[0][1]["Range"] == "bytes=123456-"


def test_part_already_complete_is_accepted(server, tmp_path):
    target = tmp_path / "data.bin"
    part_path(target).write_bytes(BODY)
    fetch(server.url("data.bin"), target, FAST, QUIET)  # the server answers 416 */size
    assert target.read_bytes() == BODY


def test_part_longer_than_the_file_starts_over(server, tmp_path):
    target = tmp_path / "data.bin"
    part_path(target).write_bytes(BODY + b"junk")
    fetch(server.url("data.bin"), target, FAST, QUIET)
    assert target.read_bytes() == BODY


def test_server_error_is_retried(server, tmp_path):
    server.statuses["data.bin"] = [503, 500]
    fetch(server.url("data.bin"), tmp_path / "data.bin", FAST, QUIET)
    assert len(server.requests) == 3


def test_persistent_server_error_names_the_address(server, tmp_path):
    server.statuses["data.bin"] = [503] * 5
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:\d+/data\.bin: server error HTTP 503.*3 attempts"):
        fetch(server.url("data.bin"), tmp_path / "data.bin", FAST, QUIET)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_is_not_retried(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(server.url("nothing.bin"), tmp_path / "nothing.bin", FAST, QUIET)
    assert len(server.requests) == 1


def test_timeout_is_retried(server, tmp_path):
    server.delays["data.bin"] = [1.0]
    policy = DownloadPolicy(timeout_s=0.3, attempts=2, backoff_s=0.0)
    fetch(server.url("data.bin"), tmp_path / "data.bin", policy, QUIET)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    # the slow first answer was given up on, not waited for: a second request fetched the file
    assert len(server.requests) == 2


def test_unreachable_host(tmp_path, closed_port_url):
    url = closed_port_url("data.bin")
    with pytest.raises(DataError, match=rf"cannot download {url}: cannot reach the server"):
        fetch(url, tmp_path / "data.bin", FAST, QUIET)
    assert list(tmp_path.iterdir()) == []  # no empty .part left behind


def test_failed_download_keeps_the_bytes_it_got(server, tmp_path):
    server.cuts["data.bin"] = [200_000]
    server.statuses["data.bin"] = []
    policy = DownloadPolicy(timeout_s=2.0, attempts=1, backoff_s=0.0)
    target = tmp_path / "data.bin"
    with pytest.raises(DataError, match="connection cut"):
        fetch(server.url("data.bin"), target, policy, QUIET)
    assert part_path(target).read_bytes() == BODY[:200_000]
    fetch(server.url("data.bin"), target, policy, QUIET)  # the next run resumes
    assert target.read_bytes() == BODY
    assert server.requests[-1][1]["Range"] == "bytes=200000-"
