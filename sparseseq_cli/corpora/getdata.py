"""``sparseseq getdata``: obtain, verify and install the datasets, atomically.

Everything is assembled in a temporary folder inside DEST (``DEST/.getdata-*``), checked,
and only then renamed into place (``DEST/penn``, ``DEST/wikitext-2``, ``DEST/wsj-pos``),
so an interrupted or failed run leaves the installed data as it was. The only thing a
failed run keeps is a partial download under ``DEST/.downloads``, so that the next run
resumes it. Each installed folder gets a ``SHA256SUMS`` file (``sha256sum -c`` format).

Sources, in order: ``--from`` (an archive or a folder the user has: the offline path),
else ``--mirror`` (the archive at another base address, and nothing else), else the
registry's addresses (the archive, then the per-file fallback).
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from sparseseq_cli.corpora import datasets, treebank
from sparseseq_cli.corpora.archives import SafeArchive
from sparseseq_cli.corpora.datasets import WSJ_FOLDER, WSJ_HELP, Dataset, DatasetName, GetdataOptions
from sparseseq_cli.corpora.download import DownloadPolicy, ProgressDisplay, fetch, part_path
from sparseseq_cli.corpora.integrity import DataError, check_sha256, sha256_file
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


@dataclass
class _Context:
    options: GetdataOptions
    registry: Mapping[str, Dataset]
    policy: DownloadPolicy
    display: ProgressDisplay
    say: Callable[[str], None]


def getdata(
    options: GetdataOptions,
    registry: Mapping[str, Dataset] | None = None,
    policy: DownloadPolicy | None = None,
    display: ProgressDisplay | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Installed]:
    """Install the datasets ``options`` names; return what is in place, with hashes."""
    registry = datasets.DATASETS if registry is None else registry  # read at call time: tests swap it
    if say is None:
        say = (lambda line: None) if options.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    ctx = _Context(options, registry, policy or DownloadPolicy(), display or ProgressDisplay(options.quiet), say)
    _check_options(options)

    name = DatasetName(options.dataset)
    if name == DatasetName.wsj_pos:
        return [_install_wsj(ctx)]
    if name != DatasetName.all:
        return [_install_download(ctx, registry[name.value])]
    results, failures = [], []
    for dataset in registry.values():
        try:
            results.append(_install_download(ctx, dataset))
        except DataError as err:
            failures.append(f"{dataset.name}: {err}")
    say(f"{WSJ_FOLDER}: not downloadable (LDC license); see `sparseseq getdata wsj-pos`")
    if failures:
        raise DataError("; ".join(failures))
    return results


def run_getdata(dataset: DatasetName | None = None, *, as_json: bool = False, **flags) -> list[Installed]:
    """The command: flags left at None keep GetdataOptions' defaults; --json prints the outcome."""
    given = {"dataset": dataset, **flags}
    options = GetdataOptions(**{key: value for key, value in given.items() if value is not None})
    installed = getdata(options)
    if as_json:
        report = {"dest": str(options.dest), "datasets": [item.as_dict() for item in installed]}
        print(json.dumps(report, indent=2))
    return installed


def _check_options(options: GetdataOptions) -> None:
    if options.source is not None and options.mirror is not None:
        raise SparseseqError("--from and --mirror name two different sources; give one of them")
    if options.source is not None and options.dataset == DatasetName.all:
        raise SparseseqError("--from names one dataset's source: use it with ptb, wikitext-2 or wsj-pos, not all")
    if options.mirror is not None and options.dataset == DatasetName.wsj_pos:
        raise SparseseqError(f"--mirror does not apply to wsj-pos: {WSJ_HELP}")
    if options.mirror is not None and not options.mirror.startswith(("http://", "https://")):
        raise SparseseqError(
            f"--mirror {options.mirror}: give an http:// or https:// base address (for a local file use --from)"
        )
    if options.source is not None and not options.source.exists():
        raise SparseseqError(f"--from {options.source}: no such file or folder")


# ---- the temporary workspace and the final rename --------------------------------------


@contextmanager
def _workspace(dest: Path) -> Iterator[Path]:
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


def _put_in_place(new: Path, final: Path, work: Path) -> None:
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


def _write_manifest(folder: Path, hashes: dict[str, str]) -> None:
    (folder / MANIFEST).write_text("".join(f"{h}  {name}\n" for name, h in hashes.items()), encoding="utf-8")


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        lines = (folder / MANIFEST).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return {name: digest for digest, _, name in (line.partition("  ") for line in lines if line)}


# ---- PTB and WikiText-2 -----------------------------------------------------------------


def _install_download(ctx: _Context, dataset: Dataset) -> Installed:
    options = ctx.options
    final = options.dest / dataset.folder
    if final.exists() and not options.force:
        hashes, problem = _check_installed(dataset, final)
        if problem:
            raise SparseseqError(
                f"{final} exists but does not hold verified {dataset.name} files ({problem}); "
                "move it away or pass --force to replace it"
            )
        ctx.say(f"{dataset.name}: {final} already holds the verified files; nothing to do (--force redoes it)")
        return Installed(dataset.name, final, "already installed", str(final), hashes)

    with _workspace(options.dest) as work:
        new = work / dataset.folder
        new.mkdir()
        source = _obtain(ctx, dataset, new, work)
        hashes = {f.name: sha256_file(new / f.name) for f in dataset.files}
        _write_manifest(new, hashes)
        _put_in_place(new, final, work)
        _forget_partial_downloads(ctx, dataset)
    checked = "sha256 verified" if dataset.files_verified else f"{dataset.archive} sha256 verified"
    ctx.say(f"{dataset.name}: installed {', '.join(hashes)} ({checked}) in {final} (from {source})")
    return Installed(dataset.name, final, "installed", source, hashes)


def _check_installed(dataset: Dataset, folder: Path) -> tuple[dict[str, str], str]:
    """The installed files' hashes, and what is wrong with them ('' when they verify)."""
    recorded = _read_manifest(folder)
    hashes = {}
    for f in dataset.files:
        path = folder / f.name
        expected = f.sha256 or recorded.get(f.name)
        if not path.is_file():
            return hashes, f"{f.name} is missing"
        if expected is None:
            return hashes, f"no {MANIFEST} to check {f.name} against"
        hashes[f.name] = sha256_file(path)
        if hashes[f.name] != expected:
            return hashes, f"{f.name} has sha256 {hashes[f.name]}, expected {expected}"
    return hashes, ""


def _obtain(ctx: _Context, dataset: Dataset, new: Path, work: Path) -> str:
    """Put the dataset's verified files into ``new``; return a description of the source."""
    options = ctx.options
    if options.source is not None:
        if options.source.is_dir():
            _copy_from_folder(dataset, options.source, new)
        else:
            _unpack(dataset, options.source, new, work, str(options.source))
        return str(options.source)
    if options.mirror is not None:
        url = options.mirror.rstrip("/") + "/" + dataset.archive
        return _download_archive(ctx, dataset, url, new, work)

    failures = []
    for url in dataset.urls:
        try:
            return _download_archive(ctx, dataset, url, new, work)
        except DataError as err:
            failures.append(str(err))
            ctx.say(f"{dataset.name}: {err}; trying the next source")
    if dataset.file_urls:
        try:
            return _download_files(ctx, dataset, new)
        except DataError as err:
            failures.append(str(err))
    raise DataError(
        f"could not get {dataset.name}: {'; '.join(failures)}. Without a network, download "
        f"{dataset.archive} on another machine and pass --from FILE"
    )


def _download_path(dest: Path, url: str) -> Path:
    # One partial file per address, so resuming never mixes two sources' bytes.
    tag = hashlib.sha256(url.encode()).hexdigest()[:8]
    return dest / DOWNLOADS / f"{tag}-{posixpath.basename(url) or 'download'}"


def _forget_partial_downloads(ctx: _Context, dataset: Dataset) -> None:
    """Once installed, a source that failed halfway will not be resumed: drop its bytes."""
    urls = [*dataset.urls, *dataset.file_urls]
    if ctx.options.mirror is not None:
        urls.append(ctx.options.mirror.rstrip("/") + "/" + dataset.archive)
    for url in urls:
        part_path(_download_path(ctx.options.dest, url)).unlink(missing_ok=True)


def _download_archive(ctx: _Context, dataset: Dataset, url: str, new: Path, work: Path) -> str:
    ctx.say(f"{dataset.name}: downloading {url}")
    archive = fetch(url, _download_path(ctx.options.dest, url), ctx.policy, ctx.display, dataset.archive)
    try:
        _unpack(dataset, archive, new, work, url)
    finally:
        archive.unlink()  # verified and unpacked, or wrong: either way not needed again
    return url


def _download_files(ctx: _Context, dataset: Dataset, new: Path) -> str:
    for f in dataset.files:
        ctx.say(f"{dataset.name}: downloading {f.url}")
        path = fetch(f.url, _download_path(ctx.options.dest, f.url), ctx.policy, ctx.display, posixpath.basename(f.url))
        try:
            check_sha256(path, f.sha256, f"{dataset.name} {f.name} (from {f.url})")
        except DataError:
            path.unlink()
            raise
        shutil.move(path, new / f.name)
    return ", ".join(f.url for f in dataset.files)


def _unpack(dataset: Dataset, archive: Path, new: Path, work: Path, origin: str) -> None:
    """Take the dataset's files out of ``archive`` into ``new``, verified."""
    if not dataset.files_verified:
        check_sha256(
            archive,
            dataset.archive_sha256,
            f"{dataset.archive} from {origin} (its files have no published hashes, so only "
            "the original archive, byte for byte, can be verified)",
        )
    unpacked = work / "unpacked"
    with SafeArchive(archive) as safe:
        members = [_locate(safe.names, f.member, origin) for f in dataset.files]
        paths = safe.extract(members, unpacked)
    for f, member in zip(dataset.files, members):
        if f.sha256:
            check_sha256(paths[member], f.sha256, f"{dataset.name} {f.name} ({member} in {origin})")
        os.replace(paths[member], new / f.name)


def _locate(names: Mapping[str, str], member: str, origin: str) -> str:
    """The archive's file for ``member``: that path, or the one file with its base name."""
    wanted = posixpath.normpath(member)
    if wanted in names:
        return wanted
    base = posixpath.basename(wanted)
    matches = sorted(n for n in names if posixpath.basename(n) == base)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"{origin} has no file {wanted} (nor any file named {base})")
    raise DataError(f"{origin} has several files named {base} ({', '.join(matches)}); expected {wanted}")


def _copy_from_folder(dataset: Dataset, folder: Path, new: Path) -> None:
    if not dataset.files_verified:
        raise SparseseqError(
            f"--from {folder}: {dataset.name}'s files have no published hashes, so it can only be "
            f"installed from the original {dataset.archive} (sha256 {dataset.archive_sha256}); pass that file"
        )
    for f in dataset.files:
        parts = posixpath.normpath(f.member).split("/")
        # train.txt, or the archive's path or any tail of it (ptb.train.txt, data/ptb.train.txt)
        candidates = [f.name, *("/".join(parts[i:]) for i in range(len(parts) - 1, -1, -1))]
        found = next((folder / c for c in candidates if (folder / c).is_file()), None)
        if found is None:
            raise SparseseqError(f"--from {folder}: no {' or '.join(candidates[:2])} in it")
        shutil.copyfile(found, new / f.name)
        check_sha256(new / f.name, f.sha256, f"{dataset.name} {f.name} ({found})")


# ---- WSJ POS ----------------------------------------------------------------------------


def _install_wsj(ctx: _Context) -> Installed:
    options = ctx.options
    if options.source is None:
        raise SparseseqError(WSJ_HELP)
    final = options.dest / WSJ_FOLDER
    with _workspace(options.dest) as work:
        folder = options.source
        if folder.is_file():  # an archive of the trees (NLTK's treebank.zip) or of ready files
            folder = work / "unpacked"
            folder.mkdir()
            with SafeArchive(options.source) as safe:
                safe.extract(sorted(safe.names), folder)
        data = treebank.read_wsj(folder, str(options.source))
        new = work / WSJ_FOLDER
        new.mkdir()
        hashes = {p.name: sha256_file(p) for p in treebank.write_wsj(data, new)}
        notes = _wsj_notes(data)
        if final.exists() and not options.force:
            old = {name: sha256_file(final / name) for name in hashes if (final / name).is_file()}
            if old == hashes and set(_read_manifest(final)) == set(hashes):
                ctx.say(f"wsj-pos: {final} already holds these files; nothing to do (--force redoes it)")
                return Installed("wsj-pos", final, "already installed", str(options.source), hashes, notes)
            raise SparseseqError(
                f"{final} exists and holds other data than {options.source} gives; "
                "move it away or pass --force to replace it"
            )
        _write_manifest(new, hashes)
        _put_in_place(new, final, work)
    for note in notes:
        ctx.say(f"wsj-pos: {note}")
    counts = ", ".join(f"{split} {len(s):,} sentences" for split, s in data.splits.items())
    ctx.say(f"wsj-pos: installed {', '.join(hashes)} in {final} ({counts})")
    return Installed("wsj-pos", final, "installed", str(options.source), hashes, notes)


def _wsj_notes(data: treebank.WsjData) -> list[str]:
    notes = []
    if data.missing:
        installed = ", ".join(f"{split}.conll" for split in data.splits)
        if data.kind == "treebank":
            missing = " and ".join(
                f"no {split} split (sections {_span(treebank.SPLIT_SECTIONS[split])})" for split in data.missing
            )
            found = ", ".join(f"{s:02d}" for s in data.sections)
            notes.append(
                f"{missing} in the trees given (sections found: {found}; NLTK's sample has 00-01 "
                f"only): installed {installed} only. The full Treebank-3 (LDC99T42) has every section"
            )
        else:
            notes.append(f"no {' or '.join(data.missing)} file given: installed {installed} only")
    if data.unlisted_tags:
        notes.append(f"tags not in the Penn tag set, added to tags.txt: {' '.join(data.unlisted_tags)}")
    return notes


def _span(sections: range) -> str:
    return f"{sections.start:02d}-{sections.stop - 1:02d}"
