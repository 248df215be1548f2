"""Language-model data: token files to id tensors, and the batch-column layout.

A corpus folder holds one token file per split (``train.txt``, ``valid.txt``, ``test.txt``;
Mikolov's ``ptb.train.txt`` and WikiText's ``wiki.train.tokens`` names are found too). Each
line is split on whitespace and ends with ``<eos>``. The vocabulary comes from the training
split, in the configured order; words that only valid/test contain are appended after it,
as the original code did (their rows are never trained). ``builtin:toy`` is the built-in
synthetic corpus, generated in memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

from sparseseq_cli.corpora.synthetic import BUILTIN_PATH as BUILTIN
from sparseseq_cli.corpora.synthetic import lm_corpus
from sparseseq_cli.corpora.vocab import SPLITS, UNK, Vocabulary, VocabOrder
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_text

EOS = "<eos>"
_NAMES = ("{split}.txt", "ptb.{split}.txt", "wiki.{split}.tokens")


@dataclass
class LMCorpus:
    vocab: Vocabulary
    splits: dict[str, torch.Tensor]  # split -> 1-D LongTensor of ids, <eos> after each line
    source: str
    unknown: dict[str, int] = field(default_factory=dict)  # split -> words mapped to <unk>


def _split_file(folder: Path, split: str) -> Path:
    for pattern in _NAMES:
        path = folder / pattern.format(split=split)
        if path.exists():
            return path
    tried = ", ".join(p.format(split=split) for p in _NAMES)
    raise SparseseqError(f"{folder} has no {split} split (looked for {tried}): "
                         f"add the file or point --data at the right folder")


def _read_lines(path: Path) -> list[str]:
    return read_text(path, str(path), "check that it is a readable file").splitlines()


def _sentences_from_folder(folder: Path, splits: Sequence[str]) -> dict[str, list[list[str]]]:
    if not folder.exists():
        raise SparseseqError(f"data folder {folder} does not exist: give --data a folder with "
                             f"train/valid/test token files (or builtin:toy)")
    if not folder.is_dir():
        raise SparseseqError(f"data path {folder} is a file: give --data the folder that holds it")
    return {split: [line.split() for line in _read_lines(_split_file(folder, split))]
            for split in splits}


def _sentences_from_builtin(seed: int, splits: Sequence[str]) -> dict[str, list[list[str]]]:
    corpus = lm_corpus(seed)
    return {split: corpus[split] for split in splits}


def token_stream(sentences: Iterable[list[str]]) -> list[str]:
    tokens: list[str] = []
    for words in sentences:
        tokens.extend(words)
        tokens.append(EOS)
    return tokens


def load_lm_corpus(path: str, order: VocabOrder | str = VocabOrder.UP, *, corpus_seed: int = 0,
                   splits: Sequence[str] = SPLITS, vocab: Vocabulary | None = None,
                   map_unknown: bool = False) -> LMCorpus:
    """Read ``splits`` of the corpus at ``path`` (a folder or ``builtin:toy``).

    Without ``vocab`` the vocabulary is built from the train split (which must then be among
    ``splits``); with one (a trained model's), every word must be in it, or with
    ``map_unknown`` the words it lacks become ``<unk>`` (counted in ``LMCorpus.unknown``).
    """
    if path == BUILTIN:
        sentences = _sentences_from_builtin(corpus_seed, splits)
        source = f"{BUILTIN} (seed {corpus_seed})"
    else:
        sentences = _sentences_from_folder(Path(path), splits)
        source = str(path)
    streams = {split: token_stream(sentences[split]) for split in splits}
    for split, tokens in streams.items():
        if len(tokens) == sum(1 for t in tokens if t == EOS):
            raise SparseseqError(f"the {split} split of {source} is empty (no words): "
                                 f"give a corpus with text in every split")
    if vocab is None:
        vocab = Vocabulary.build(streams["train"], order)
        for split in splits:
            vocab.extend(streams[split])
    elif not map_unknown:
        for split, tokens in streams.items():
            unknown = next((t for t in tokens if t not in vocab), None)
            if unknown is not None:
                raise SparseseqError(f"the {split} split of {source} has the word {unknown!r}, "
                                     f"which the model's vocabulary lacks: evaluate on the corpus "
                                     f"it was trained with")
    ids, unknown = {}, {}
    for split, tokens in streams.items():
        ids[split], missing = token_ids(tokens, vocab, f"the {split} split of {source}")
        unknown[split] = len(missing)
    return LMCorpus(vocab, ids, source, unknown)


def token_ids(tokens: Sequence[str], vocab: Vocabulary, source: str) -> tuple[torch.Tensor, list[int]]:
    """``tokens`` as ids, and the positions of the words ``vocab`` lacks, which become ``<unk>``
    when it has one (Mikolov's PTB does); without one they are an error naming a few of them."""
    index = vocab.index
    unk = index.get(UNK)
    missing = [i for i, t in enumerate(tokens) if t not in index]
    if missing and unk is None:
        words = list(dict.fromkeys(tokens[i] for i in missing))
        shown = ", ".join(repr(w) for w in words[:5]) + (f" and {len(words) - 5} more" if len(words) > 5 else "")
        raise SparseseqError(f"{source} has {len(words)} word(s) the model's vocabulary lacks ({shown}) "
                             f"and the vocabulary has no {UNK} to stand for them: use the model's words")
    return torch.tensor([index.get(t, unk) for t in tokens], dtype=torch.long), missing


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut the token stream into ``batch_size`` columns, dropping the remainder.

    The stream a b c d e f g h i j k with batch_size 3 becomes (time runs down):

        a d g
        b e h
        c f i          (j k dropped)

    so each column is a contiguous piece of text, and step t of every column is processed
    together; the hidden state of a column flows from one batch of rows to the next.
    """
    rows = ids.numel() // batch_size
    if rows < 2:
        raise SparseseqError(f"{ids.numel()} tokens are too few for batch size {batch_size}: "
                             f"each of the {batch_size} columns needs at least 2 tokens; "
                             f"use a smaller batch size or more data")
    return ids[:rows * batch_size].view(batch_size, rows).t().contiguous()


def unigram_perplexity(train: torch.Tensor, other: torch.Tensor, vocab_size: int) -> float:
    """Perplexity of ``other`` under the add-one unigram model of ``train``: the baseline a
    language model must beat by far."""
    counts = torch.bincount(train, minlength=vocab_size).double() + 1
    log_p = counts.log() - counts.sum().log()
    return math.exp(-log_p[other].mean().item())
