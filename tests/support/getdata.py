"""Helpers for the getdata tests: a local HTTP server with failure knobs, archives, a registry.

Nothing here touches the network beyond 127.0.0.1. Behind the getdata fixtures of
tests/conftest.py (file_server, closed_port_url, make_tar, ...); test modules use those
fixtures, not this module.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import re
import socket
import stat
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sparseseq_cli.corpora.datasets import DataFile, Dataset

# Three small "PTB" files, and the WikiText-like dataset's three files.
PTB_TEXT = {
    "train": b" the cat sat on the mat \n the dog sat on the log \n" * 400,
    "valid": b" the cat sat on the log \n" * 50,
    "test": b" the dog sat on the mat \n" * 60,
}
WIKI_TEXT = {
    "train": b" = Title = \n the wiki text \n" * 300,
    "valid": b" = Other = \n more text \n" * 30,
    "test": b" = Last = \n final text \n" * 30,
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1 with HTTP Range support.

    Knobs, each used once per request to that path, in order: ``statuses[path]`` (answer
    these HTTP error codes first), ``delays[path]`` (seconds to wait before answering),
    ``cuts[path]`` (bytes to send before dropping the connection). And for every request:
    ``redirects[path]`` (answer 302 to this address), ``unsized`` (paths whose body is sent
    without a Content-Length, ended by closing the connection, as an endless answer is;
    ``sent[path]`` counts the bytes the server got out before the client hung up).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.statuses: dict[str, list[int]] = {}
        self.delays: dict[str, list[float]] = {}
        self.cuts: dict[str, list[int]] = {}
        self.redirects: dict[str, str] = {}
        self.unsized: set[str] = set()
        self.sent: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                owner.requests.append((path, dict(self.headers)))
                if owner.statuses.get(path):
                    self.send_error(owner.statuses[path].pop(0))
                    return
                if owner.delays.get(path):
                    time.sleep(owner.delays[path].pop(0))
                if path in owner.redirects:
                    self.send_response(302)
                    self.send_header("Location", owner.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = owner.files.get(path)
                if body is not None and path in owner.unsized:
                    self.send_response(200)
                    self.end_headers()
                    owner.sent[path] = 0
                    for start in range(0, len(body), 1 << 14):
                        self.wfile.write(body[start:start + (1 << 14)])  # raises once the client hangs up
                        owner.sent[path] = min(len(body), start + (1 << 14))
                    self.close_connection = True
                    return
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if match:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if owner.cuts.get(path):
                    self.wfile.write(data[: owner.cuts[path].pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A client that hangs up mid-response (a test cutting a download, the command giving
        # up after a mismatch) makes the server print a traceback to stderr, which CliRunner
        # would mix into the command's own stderr: keep those on record instead.
        self.server_errors: list[tuple] = []
        self.httpd.handle_error = lambda request, address: self.server_errors.append((address, sys.exc_info()[1]))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.base + path


def closed_port_url(path: str = "x.tgz") -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def make_tar(members: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> bytes:
    """A .tgz (byte-identical on every call) of regular files, plus ``links``:
    name -> (tarfile.SYMTYPE or LNKTYPE, target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return gzip.compress(buffer.getvalue(), mtime=0)


def make_zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A .zip (byte-identical on every call) of regular files, plus ``symlinks``: name -> target."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2016, 9, 26, 0, 0, 0)), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2016, 9, 26, 0, 0, 0))
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def ptb_archive(files: dict[str, bytes] = PTB_TEXT) -> bytes:
    """A repackaged simple-examples.tgz with Mikolov's member names."""
    return make_tar({f"./simple-examples/data/ptb.{split}.txt": data for split, data in files.items()})


def wiki_archive(files: dict[str, bytes] = WIKI_TEXT) -> bytes:
    return make_zip({f"wikitext-2/wiki.{split}.tokens": data for split, data in files.items()})


def registry(server: FileServer, wiki_zip: bytes | None = None) -> dict[str, Dataset]:
    """A registry like the real one, pointing at ``server`` and at the test files' hashes."""
    ptb = Dataset(
        name="ptb",
        folder="penn",
        archive="simple-examples.tgz",
        urls=(server.url("simple-examples.tgz"),),
        max_archive_bytes=10 * len(ptb_archive()),  # 10x the real sizes, as in the real registry
        max_member_bytes=10 * len(PTB_TEXT["train"]),
        files=tuple(
            DataFile(f"{split}.txt", f"simple-examples/data/ptb.{split}.txt", sha(data),
                     server.url(f"raw/ptb.{split}.txt"))
            for split, data in PTB_TEXT.items()
        ),
    )
    wiki = Dataset(
        name="wikitext-2",
        folder="wikitext-2",
        archive="wikitext-2-v1.zip",
        urls=(server.url("wikitext-2-v1.zip"),),
        files=tuple(DataFile(f"{split}.txt", f"wikitext-2/wiki.{split}.tokens") for split in WIKI_TEXT),
        max_archive_bytes=10 * len(wiki_archive()),
        max_member_bytes=10 * len(WIKI_TEXT["train"]),
        archive_sha256=sha(wiki_zip if wiki_zip is not None else wiki_archive()),
    )
    return {"ptb": ptb, "wikitext-2": wiki}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content, to compare before and after a run."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
