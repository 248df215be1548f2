"""``sparseseq getdata``: obtain, verify and install the datasets, atomically.

The datasets are assembled aside and renamed into place only once verified, under a lock
on DEST (:mod:`atomic_install`); downloads and extracted files are size-capped (the caps are
in the registry, :mod:`datasets`); wsj-pos is the user's own copy, converted (:mod:`wsj_install`).
PTB and WikiText-2 come from, in order: ``--from`` (an archive or a folder the user has: the
offline path), else ``--mirror`` (the archive at another base address, and nothing else),
else the registry's addresses (the archive, then the per-file fallback).
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from sparseseq_cli.corpora import datasets
from sparseseq_cli.corpora.archives import SafeArchive
from sparseseq_cli.corpora.atomic_install import (DOWNLOADS, MANIFEST, Installed, hold_dest, put_in_place,
                                                  read_manifest, workspace, write_manifest)
from sparseseq_cli.corpora.datasets import WSJ_FOLDER, WSJ_HELP, Dataset, DatasetName, GetdataOptions
from sparseseq_cli.corpora.download import DownloadPolicy, fetch, part_path
from sparseseq_cli.corpora.integrity import DataError, check_sha256, sha256_file
from sparseseq_cli.corpora.wsj_install import install_wsj
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.progress import Progress


@dataclass
class _Context:
    options: GetdataOptions
    policy: DownloadPolicy
    progress: Progress


def getdata(
    options: GetdataOptions,
    registry: Mapping[str, Dataset] | None = None,
    policy: DownloadPolicy | None = None,
    progress: Progress | None = None,
) -> list[Installed]:
    """Install the datasets ``options`` names; return what is in place, with hashes.

    Each step is a line of ``progress`` (default: stderr, nothing with ``options.quiet``).
    DEST is held for the whole run (:func:`~sparseseq_cli.corpora.atomic_install.hold_dest`):
    a second getdata into it stops at once.
    """
    registry = datasets.DATASETS if registry is None else registry  # read at call time: tests swap it
    progress = progress or Progress(quiet=options.quiet)
    ctx = _Context(options, policy or DownloadPolicy(), progress)
    _check_options(options)
    with hold_dest(options.dest, progress):
        return _install(ctx, registry)


def _install(ctx: _Context, registry: Mapping[str, Dataset]) -> list[Installed]:
    name = DatasetName(ctx.options.dataset)
    if name == DatasetName.wsj_pos:
        return [install_wsj(ctx.options, ctx.progress)]
    if name != DatasetName.all:
        return [_install_download(ctx, registry[name.value])]
    results, failures = [], []
    for dataset in registry.values():
        try:
            results.append(_install_download(ctx, dataset))
        except DataError as err:
            failures.append(f"{dataset.name}: {err}")
    ctx.progress.line(f"{WSJ_FOLDER}: not downloadable (LDC license); see `sparseseq getdata wsj-pos`")
    if failures:
        raise DataError("; ".join(failures))
    return results


def _check_options(options: GetdataOptions) -> None:
    if options.source is not None and options.mirror is not None:
        raise SparseseqError("--from and --mirror name two different sources; give one of them")
    if options.source is not None and options.dataset == DatasetName.all:
        raise SparseseqError("--from names one dataset's source: use it with ptb, wikitext-2 or wsj-pos, not all")
    if options.mirror is not None and options.dataset == DatasetName.wsj_pos:
        raise SparseseqError(f"--mirror does not apply to wsj-pos: {WSJ_HELP}")
    if options.source is None and options.dataset == DatasetName.wsj_pos:
        raise SparseseqError(WSJ_HELP)
    if options.mirror is not None and not options.mirror.startswith(("http://", "https://")):
        raise SparseseqError(
            f"--mirror {options.mirror}: give an http:// or https:// base address (for a local file use --from)"
        )
    if options.source is not None and not options.source.exists():
        raise SparseseqError(f"--from {options.source}: no such file or folder")


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
        ctx.progress.line(
            f"{dataset.name}: {final} already holds the verified files; nothing to do (--force redoes it)"
        )
        return Installed(dataset.name, final, "already installed", str(final), hashes)

    with workspace(options.dest) as work:
        new = work / dataset.folder
        new.mkdir()
        source = _obtain(ctx, dataset, new, work)
        hashes = {f.name: sha256_file(new / f.name) for f in dataset.files}
        write_manifest(new, hashes)
        put_in_place(new, final, work)
        _forget_partial_downloads(ctx, dataset)
    checked = "sha256 verified" if dataset.files_verified else f"{dataset.archive} sha256 verified"
    ctx.progress.line(f"{dataset.name}: installed {', '.join(hashes)} ({checked}) in {final} (from {source})")
    return Installed(dataset.name, final, "installed", source, hashes)


def _check_installed(dataset: Dataset, folder: Path) -> tuple[dict[str, str], str]:
    """The installed files' hashes, and what is wrong with them ('' when they verify)."""
    recorded = read_manifest(folder)
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
            ctx.progress.line(f"{dataset.name}: {err}; trying the next source")
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
    ctx.progress.line(f"{dataset.name}: downloading {url}")
    archive = fetch(url, _download_path(ctx.options.dest, url), ctx.policy, ctx.progress, dataset.archive,
                    dataset.max_archive_bytes)
    try:
        _unpack(dataset, archive, new, work, url)
    finally:
        archive.unlink()  # verified and unpacked, or wrong: either way not needed again
    return url


def _download_files(ctx: _Context, dataset: Dataset, new: Path) -> str:
    for f in dataset.files:
        ctx.progress.line(f"{dataset.name}: downloading {f.url}")
        target = _download_path(ctx.options.dest, f.url)
        path = fetch(f.url, target, ctx.policy, ctx.progress, posixpath.basename(f.url), dataset.max_member_bytes)
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
        paths = safe.extract(members, unpacked, dataset.max_member_bytes)
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
