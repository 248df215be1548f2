"""Vocabulary: words to ids, in one of four orders.

A SparseEmbedding gives its long vectors to the words at the END of the vocabulary (block j
covers the ids >= start_j), so the order decides which words get long embeddings:

    up    least to most frequent (the paper's default: frequent words get long vectors)
    down  most to least frequent (the paper's ablation)
    rand  shuffled with a fixed seed
    none  first-seen order in the training data

Frequency ties keep first-seen order (a stable sort), and ``rand`` with seed 0 shuffles like
the original code did after ``random.seed(0)``, so ids match the original number for number.
"""
from __future__ import annotations

import random
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Iterable

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_text

SPLITS = ("train", "valid", "test")   # a corpus's splits, in this order
UNK = "<unk>"                         # stands for any word outside a vocabulary


class VocabOrder(str, Enum):
    UP = "up"
    DOWN = "down"
    RAND = "rand"
    NONE = "none"


class Vocabulary:
    """An ordered list of distinct words; ``vocab[word]`` is its id, ``vocab.words[id]`` the word."""

    def __init__(self, words: Iterable[str]):
        self.words: list[str] = list(words)
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            seen: set[str] = set()
            dup = next(w for w in self.words if w in seen or seen.add(w))
            raise SparseseqError(f"the vocabulary lists {dup!r} twice: every word must be unique")

    @classmethod
    def build(cls, tokens: Iterable[str], order: VocabOrder | str = VocabOrder.UP, *,
              specials: Iterable[str] = (), seed: int = 0) -> "Vocabulary":
        """Count ``tokens`` (the training split) and order the words.

        ``specials`` (e.g. ``<pad>``, ``<unk>``) are counted once each before the tokens, as the
        original tagger did, so they take part in the ordering like any other word.
        """
        counts: Counter[str] = Counter()  # insertion order = first-seen order
        for word in specials:
            counts[word] += 1
        counts.update(tokens)
        items = list(counts.items())
        order = VocabOrder(order)
        if order is VocabOrder.UP:
            items.sort(key=lambda item: item[1])
        elif order is VocabOrder.DOWN:
            items.sort(key=lambda item: item[1], reverse=True)
        elif order is VocabOrder.RAND:
            random.Random(seed).shuffle(items)
        return cls(word for word, _ in items)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> int:
        return self.index[word]

    def extend(self, words: Iterable[str]) -> None:
        """Append words not yet known, at the end, in the order given."""
        for word in words:
            if word not in self.index:
                self.index[word] = len(self.words)
                self.words.append(word)

    def save(self, path: Path) -> None:
        """One word a line, in id order (the file a run folder keeps as vocab.txt)."""
        Path(path).write_text("".join(w + "\n" for w in self.words), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        text = read_text(path, f"the vocabulary {path}", "restore it from the run's checkpoint or retrain")
        return cls(text.splitlines())
