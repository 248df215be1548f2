"""``sparseseq getdata wsj-pos --from ...``: the user's WSJ copy converted and installed.

The data is LDC-licensed and never downloaded: ``--from`` names Treebank trees, NLTK's
sample (a folder or its zip) or ready token/tag files; :mod:`treebank` reads and writes them.
"""
from __future__ import annotations

from sparseseq_cli.corpora import datasets, treebank
from sparseseq_cli.corpora.archives import SafeArchive
from sparseseq_cli.corpora.atomic_install import (Installed, put_in_place, read_manifest, workspace,
                                                  write_manifest)
from sparseseq_cli.corpora.datasets import WSJ_FOLDER, WSJ_HELP, GetdataOptions
from sparseseq_cli.corpora.integrity import sha256_file
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.progress import Progress


def install_wsj(options: GetdataOptions, progress: Progress) -> Installed:
    if options.source is None:
        raise SparseseqError(WSJ_HELP)
    final = options.dest / WSJ_FOLDER
    with workspace(options.dest) as work:
        folder = options.source
        if folder.is_file():  # an archive of the trees (NLTK's treebank.zip) or of ready files
            folder = work / "unpacked"
            folder.mkdir()
            with SafeArchive(options.source) as safe:
                # every file of it is unpacked: capped one by one and in all (read at call time)
                safe.extract(sorted(safe.names), folder, datasets.WSJ_MAX_MEMBER_BYTES,
                             datasets.WSJ_MAX_TOTAL_BYTES)
        data = treebank.read_wsj(folder, str(options.source))
        new = work / WSJ_FOLDER
        new.mkdir()
        hashes = {p.name: sha256_file(p) for p in treebank.write_wsj(data, new)}
        notes = _wsj_notes(data)
        if final.exists() and not options.force:
            old = {name: sha256_file(final / name) for name in hashes if (final / name).is_file()}
            if old == hashes and set(read_manifest(final)) == set(hashes):
                progress.line(f"wsj-pos: {final} already holds these files; nothing to do (--force redoes it)")
                return Installed("wsj-pos", final, "already installed", str(options.source), hashes, notes)
            raise SparseseqError(
                f"{final} exists and holds other data than {options.source} gives; "
                "move it away or pass --force to replace it"
            )
        write_manifest(new, hashes)
        put_in_place(new, final, work)
    for note in notes:
        progress.line(f"wsj-pos: {note}")
    counts = ", ".join(f"{split} {len(s):,} sentences" for split, s in data.splits.items())
    progress.line(f"wsj-pos: installed {', '.join(hashes)} in {final} ({counts})")
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
