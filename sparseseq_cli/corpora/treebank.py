"""WSJ part-of-speech data: Penn Treebank .mrg trees, or ready token/tag files, to CoNLL.

The tagging experiments read ``token<TAB>tag`` lines with a blank line after every
sentence, as the original tagger did. From trees, the tokens are the leaves in order with
their preterminal tags, ``-NONE-`` traces kept (``*-1``, ``0``, ``*T*-1``), as the paper
did; the file ``wsj_SSNN.mrg`` belongs to section SS, and sections 00-18 / 19-21 / 22-24
are train / valid / test. NLTK's free sample (sections 00-01) therefore gives a train split
only. A tree's leaves are exactly NLTK's ``tagged_sents()`` for the same file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sparseseq_cli.corpora.conll import read_conll
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_text

Sentence = list[tuple[str, str]]  # (token, tag) pairs

SPLIT_SECTIONS = {"train": range(0, 19), "valid": range(19, 22), "test": range(22, 25)}

# The original code's tags.txt, in its order (class indices follow it): the 45 Penn
# Treebank tags and -NONE-, then <start> and <end>, two classes the original's network
# kept although no token carries them. Reproduced so that the tagger's output layer and
# class indices match the original's; tags found in the data but not listed here go just
# before <start>. (The original file also ended with an empty line, which its reader took
# as a 49th tag ""; that artifact is not reproduced.)
PENN_TAGS = (
    "CC CD DT EX FW IN JJ JJR JJS LS MD NN NNP NNPS NNS PDT POS PRP PRP$ RB RBR RBS RP SYM "
    "TO UH VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB `` # $ '' , -LRB- -NONE- -RRB- . :"
).split()
ORIGINAL_EXTRA_TAGS = ("<start>", "<end>")

# Ready files: the names accepted for each split (ours, then the original code's).
READY_NAMES = {
    "train": ("train.conll", "wsj_train.conll"),
    "valid": ("valid.conll", "wsj_valid.conll", "dev.conll"),
    "test": ("test.conll", "wsj_test.conll"),
}

_MRG_NAME = re.compile(r"wsj_(\d\d)\d\d\.mrg", re.IGNORECASE)
_BRACKET_TOKEN = re.compile(r"\(|\)|[^\s()]+")


@dataclass
class WsjData:
    """The converted splits, where they came from, and what is missing."""

    kind: str  # "treebank" or "ready"
    splits: dict[str, list[Sentence]]
    sections: list[int] = field(default_factory=list)  # for "treebank"
    missing: list[str] = field(default_factory=list)  # splits with no data
    tags: list[str] = field(default_factory=list)  # what tags.txt holds
    unlisted_tags: list[str] = field(default_factory=list)  # found in the data, not in PENN_TAGS


# ---- .mrg trees -------------------------------------------------------------------------


def _where(source: str, text: str, pos: int) -> str:
    return f"{source}:{text.count(chr(10), 0, pos) + 1}"


def parse_mrg(text: str, source: str = "<text>") -> list[Sentence]:
    """The (token, tag) leaves of every tree in ``text``, one list per tree.

    A preterminal is a bracket holding exactly a tag and a word: ``(NNP Pierre)``.
    """
    sentences: list[Sentence] = []
    stack: list[list] = []  # open brackets; each collects its children
    for match in _BRACKET_TOKEN.finditer(text):
        token = match.group()
        if token == "(":
            stack.append([])
        elif token == ")":
            if not stack:
                raise SparseseqError(f"{_where(source, text, match.start())}: unbalanced ')' in a tree")
            node = stack.pop()
            if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], str):
                node = [(node[1], node[0])]  # a preterminal: its one leaf
            elif any(isinstance(child, str) for child in node[1:]):
                raise SparseseqError(
                    f"{_where(source, text, match.start())}: malformed tree (a word outside "
                    "a (TAG word) bracket)"
                )
            leaves = [child for child in node if isinstance(child, tuple)]
            if stack:
                stack[-1].extend(leaves)
            elif leaves:
                sentences.append(leaves)
        elif not stack:
            raise SparseseqError(f"{_where(source, text, match.start())}: text outside a tree: {token!r}")
        else:
            stack[-1].append(token)
    if stack:
        raise SparseseqError(f"{source}: a tree is not closed (missing ')')")
    return sentences


def find_mrg_files(root: Path) -> dict[int, list[Path]]:
    """The ``wsj_SSNN.mrg`` files under ``root``, by section, each section in file order."""
    by_name: dict[str, Path] = {}
    for path in root.rglob("*"):
        if not _MRG_NAME.fullmatch(path.name) or not path.is_file():
            continue
        key = path.name.lower()
        if key in by_name:
            raise SparseseqError(
                f"{path.name} appears twice ({by_name[key]} and {path}); point --from at one copy"
            )
        by_name[key] = path
    sections: dict[int, list[Path]] = {}
    for key in sorted(by_name):
        section = int(_MRG_NAME.fullmatch(key).group(1))
        if section > 24:
            raise SparseseqError(f"{by_name[key]}: WSJ has sections 00-24, not {section:02d}")
        sections.setdefault(section, []).append(by_name[key])
    return sections


def read_treebank(sections: dict[int, list[Path]]) -> dict[str, list[Sentence]]:
    splits: dict[str, list[Sentence]] = {}
    for split, numbers in SPLIT_SECTIONS.items():
        paths = [p for n in numbers for p in sections.get(n, [])]
        if paths:
            splits[split] = [s for p in paths
                             for s in parse_mrg(read_text(p, str(p), "give the treebank's .mrg files as they come"),
                                                str(p))]
    return splits


# ---- ready token/tag files --------------------------------------------------------------


def find_ready_files(folder: Path) -> dict[str, Path]:
    found = {}
    for split, names in READY_NAMES.items():
        for name in names:
            if (folder / name).is_file():
                found[split] = folder / name
                break
    return found


# ---- output -----------------------------------------------------------------------------


def tag_list(splits: dict[str, list[Sentence]]) -> tuple[list[str], list[str]]:
    """The tags.txt lines, and the tags seen in the data that PENN_TAGS lacks."""
    seen = {tag for sentences in splits.values() for sentence in sentences for _, tag in sentence}
    unlisted = sorted(seen - set(PENN_TAGS) - set(ORIGINAL_EXTRA_TAGS))
    return [*PENN_TAGS, *unlisted, *ORIGINAL_EXTRA_TAGS], unlisted


def write_conll(sentences: list[Sentence], path: Path) -> None:
    # Every sentence, the last included, ends with a blank line (the original reader
    # closes a sentence only on a blank line).
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for sentence in sentences:
            out.writelines(f"{token}\t{tag}\n" for token, tag in sentence)
            out.write("\n")


def read_wsj(source: Path, label: str | None = None) -> WsjData:
    """Read a Treebank tree folder, NLTK's sample, or a folder of ready split files.

    ``label`` names the source in messages (the user's archive, not our unpacked copy).
    """
    label = label or str(source)
    sections = find_mrg_files(source) if source.is_dir() else {}
    if sections:
        data = WsjData("treebank", read_treebank(sections), sections=sorted(sections))
    else:
        files = find_ready_files(source) if source.is_dir() else {}
        if not files:
            names = ", ".join(n for names in READY_NAMES.values() for n in names)
            raise SparseseqError(f"--from {label}: no wsj_*.mrg trees and no ready files ({names}) in it")
        splits = {split: [list(zip(s.words, s.tags)) for s in read_conll(path)] for split, path in files.items()}
        data = WsjData("ready", splits)
    if "train" not in data.splits:
        raise SparseseqError(f"--from {label}: no training data (sections 00-18, or train.conll) in it")
    data.missing = [split for split in SPLIT_SECTIONS if split not in data.splits]
    data.tags, data.unlisted_tags = tag_list(data.splits)
    return data


def write_wsj(data: WsjData, folder: Path) -> list[Path]:
    """Write ``<split>.conll`` for each split present and ``tags.txt``; return the paths."""
    written = []
    for split, sentences in data.splits.items():
        write_conll(sentences, folder / f"{split}.conll")
        written.append(folder / f"{split}.conll")
    (folder / "tags.txt").write_text("".join(f"{tag}\n" for tag in data.tags), encoding="utf-8")
    return [*written, folder / "tags.txt"]
