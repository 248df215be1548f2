"""Tagged corpora: CoNLL-style ``token<TAB>tag`` files and the tag list ``tags.txt``.

A split file holds one token a line, ``token<TAB>tag``, and a blank line between sentences.
A data folder holds ``train.conll`` and ``valid.conll`` (both required), ``test.conll``
(optional: without it only dev figures are reported) and optionally ``tags.txt`` (one tag a
line, the model's output classes in that order; without it the tags seen in training, sorted).
Every problem is reported as one line naming the file and the line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sparseseq_cli.corpora import synthetic
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_text

SPLIT_FILES = {"train": "train.conll", "valid": "valid.conll", "test": "test.conll"}
REQUIRED_SPLITS = ("train", "valid")
TAGS_FILE = "tags.txt"
NONE_TAG = "-NONE-"
# Longer than any treebank sentence (WSJ's longest, traces included, has 271 tokens); a longer
# one almost surely means blank lines between sentences are missing, and would silently turn
# the whole file into one sequence.
MAX_SENTENCE_TOKENS = 1000


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    line: int   # line number of the first token; token i sits on line ``line + i``


@dataclass(frozen=True)
class TaggedCorpus:
    """The splits of a tagging data set and its tag list; ``test`` is None when absent."""

    train: list[Sentence]
    valid: list[Sentence]
    test: list[Sentence] | None
    tags: tuple[str, ...]

    def splits(self) -> dict[str, list[Sentence]]:
        out = {"train": self.train, "valid": self.valid}
        if self.test is not None:
            out["test"] = self.test
        return out


def _layout() -> str:
    return (f"a folder with {SPLIT_FILES['train']}, {SPLIT_FILES['valid']}, optionally "
            f"{SPLIT_FILES['test']} and {TAGS_FILE}")


def read_conll(path: Path) -> list[Sentence]:
    """The sentences of one ``token<TAB>tag`` file."""
    path = Path(path)
    return parse_conll(read_text(path, f"split file {path}", f"expected {_layout()}"), path)


def parse_conll(text: str, path: Path | str) -> list[Sentence]:
    """The sentences of ``token<TAB>tag`` text read from ``path`` (named in the errors)."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0

    def close() -> None:
        if len(words) > MAX_SENTENCE_TOKENS:
            raise SparseseqError(
                f"{path}:{start}: sentence of {len(words)} tokens is longer than the limit of "
                f"{MAX_SENTENCE_TOKENS}; is a blank line missing between sentences?")
        sentences.append(Sentence(tuple(words), tuple(tags), start))
        words.clear()
        tags.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if words:
                close()
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise SparseseqError(
                f"{path}:{number}: expected token<TAB>tag, got {line[:60]!r}")
        if not words:
            start = number
        words.append(fields[0].strip())
        tags.append(fields[1].strip())
    if words:
        close()
    if not sentences:
        raise SparseseqError(
            f"{path} holds no sentences: expected token<TAB>tag lines, a blank line between sentences")
    return sentences


def read_tags(path: Path) -> tuple[str, ...]:
    """The tag list: one tag a line, blank lines ignored, each tag once."""
    path = Path(path)
    tags: list[str] = []
    for number, line in enumerate(read_text(path, f"tag list {path}", "give one tag a line").splitlines(), start=1):
        tag = line.strip()
        if not tag:
            continue
        if tag in tags:
            raise SparseseqError(f"{path}:{number}: tag {tag!r} is listed twice; list each tag once")
        tags.append(tag)
    if not tags:
        raise SparseseqError(f"{path} lists no tags: write one tag a line, or remove it to "
                             f"take the tags seen in training")
    return tuple(tags)


def check_tags(sentences: list[Sentence], tags: tuple[str, ...], path: Path, source: str) -> None:
    """Every tag of ``sentences`` (read from ``path``) must be in ``tags`` (from ``source``)."""
    known = set(tags)
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag not in known:
                raise SparseseqError(
                    f"{path}:{sentence.line + offset}: tag {tag!r} is not in {source}; "
                    f"add it there or fix the line")


def load_conll_dir(folder: Path) -> TaggedCorpus:
    """Read a data folder (see the module docstring) and check its tags."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SparseseqError(f"no data folder {folder}: expected {_layout()}")
    paths = {split: folder / name for split, name in SPLIT_FILES.items()}
    splits = {split: read_conll(path) for split, path in paths.items()
              if split in REQUIRED_SPLITS or path.exists()}
    tags_path = folder / TAGS_FILE
    if tags_path.exists():
        tags, source = read_tags(tags_path), str(tags_path)
    else:
        tags = tuple(sorted({t for s in splits["train"] for t in s.tags}))
        source = f"the tags of {paths['train']} (no {TAGS_FILE} there)"
    for split, sentences in splits.items():
        check_tags(sentences, tags, paths[split], source)
    return TaggedCorpus(splits["train"], splits["valid"], splits.get("test"), tags)


def corpus_from_pairs(splits: dict[str, list[list[tuple[str, str]]]],
                      tags: tuple[str, ...]) -> TaggedCorpus:
    """A corpus from in-memory ``(word, tag)`` sentences (the built-in synthetic corpus)."""
    def convert(sentences):
        out, line = [], 1
        for pairs in sentences:
            out.append(Sentence(tuple(w for w, _ in pairs), tuple(t for _, t in pairs), line))
            line += len(pairs) + 1
        return out

    return TaggedCorpus(convert(splits["train"]), convert(splits["valid"]),
                        convert(splits["test"]) if "test" in splits else None, tuple(tags))


def load_tagged_corpus(path: str, corpus_seed: int = 0) -> TaggedCorpus:
    """A configuration's tagged data: a CoNLL folder, or the built-in synthetic corpus."""
    if path == synthetic.BUILTIN_PATH:
        return corpus_from_pairs(synthetic.tagged_corpus(corpus_seed), synthetic.TAGS)
    folder = Path(path)
    if not folder.exists():
        raise SparseseqError(f"no data folder {folder}: run `sparseseq getdata wsj-pos`, or give "
                             f"--data DIR (train.conll, valid.conll, optionally test.conll and tags.txt)")
    return load_conll_dir(folder)
