"""Tagged sentences as tensors, and batches of sentences of similar length.

Words are encoded once, when the data is loaded (the only per-token Python work); a batch
is then a few tensor operations:

    sentences (lengths 5, 4, 3)      ids (T=5, B=3), longest first      lengths (3,)
    a b c d e                        a f j                               5 4 3
    f g h i                          b g k
    j k l                            c h l
                                     d i <pad>
                                     e <pad> <pad>

(one sentence per column, time running down; the sentences of a batch are put longest
first whatever their order in the split, and padded at the end with ``<pad>``)

Training batches group sentences of similar length (little padding, short BiLSTM runs):
shuffle, cut into pools of ``POOL_BATCHES`` batches, sort each pool by length, cut it into
batches, shuffle the batches. Evaluation batches are large and sorted by length.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from sparseseq_cli.corpora.conll import NONE_TAG, Sentence
from sparseseq_cli.corpora.vocab import UNK, Vocabulary, VocabOrder

PAD = "<pad>"
UNKNOWN_TAG = -1    # the id of a given tag the tag set lacks: no class, so never predicted
POOL_BATCHES = 50   # batches per length-sorted pool: enough to match lengths, still shuffled


def build_vocabulary(train: list[Sentence], order: VocabOrder | str, seed: int = 0) -> Vocabulary:
    """Training words plus ``<pad>`` and ``<unk>`` (counted once each, as the original did),
    in the given order."""
    return Vocabulary.build((w for s in train for w in s.words), order, specials=(PAD, UNK), seed=seed)


@dataclass
class EncodedSplit:
    """One split: per sentence a tensor of word ids and one of tag ids."""

    words: list[torch.Tensor]
    tags: list[torch.Tensor]
    lengths: torch.Tensor        # (S,) int64
    pad_id: int

    def __len__(self) -> int:
        return len(self.words)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


def encode(sentences: list[Sentence], vocab: Vocabulary, tags: tuple[str, ...]) -> EncodedSplit:
    """Words outside ``vocab`` become ``<unk>``; a tag outside ``tags`` becomes
    ``UNKNOWN_TAG`` (training checks its tags when it reads them; ``tag`` scores text whose
    given tags the model may not know, and such a token is never tagged right)."""
    unk = vocab[UNK]
    tag_ids = {t: i for i, t in enumerate(tags)}
    index = vocab.index
    words = [torch.tensor([index.get(w, unk) for w in s.words], dtype=torch.long) for s in sentences]
    tag_tensors = [torch.tensor([tag_ids.get(t, UNKNOWN_TAG) for t in s.tags], dtype=torch.long)
                   for s in sentences]
    lengths = torch.tensor([len(s.words) for s in sentences], dtype=torch.long)
    return EncodedSplit(words, tag_tensors, lengths, vocab[PAD])


@dataclass
class Batch:
    ids: torch.Tensor       # (T, B) word ids, padded with <pad>
    tags: torch.Tensor      # (T, B) tag ids, padding arbitrary (never used)
    lengths: torch.Tensor   # (B,) on the CPU, longest first (what packing needs)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.ids.to(device, non_blocking=True), self.tags.to(device, non_blocking=True),
                     self.lengths)


def make_batch(split: EncodedSplit, indices: torch.Tensor) -> Batch:
    """The sentences ``indices`` of ``split``, longest first."""
    order = indices[torch.argsort(split.lengths[indices], descending=True, stable=True)].tolist()
    ids = pad_sequence([split.words[i] for i in order], padding_value=split.pad_id)
    tags = pad_sequence([split.tags[i] for i in order], padding_value=0)
    return Batch(ids, tags, split.lengths[order])


def eval_order(split: EncodedSplit) -> torch.Tensor:
    """The sentence indices in the order :func:`eval_batches` puts them: longest first."""
    return torch.argsort(split.lengths, descending=True, stable=True)


def eval_batches(split: EncodedSplit, batch_size: int) -> list[Batch]:
    """All sentences in batches of ``batch_size``, sorted by length (least padding); column
    j of batch i is sentence ``eval_order(split)[i * batch_size + j]``."""
    order = eval_order(split)
    return [make_batch(split, chunk) for chunk in order.split(batch_size)]


def train_batches(split: EncodedSplit, batch_size: int, generator: torch.Generator) -> list[Batch]:
    """One epoch of shuffled batches of sentences of similar length (see module docstring);
    every sentence once, the last batch of a pool may be smaller."""
    perm = torch.randperm(len(split), generator=generator)
    batches = []
    for pool in perm.split(batch_size * POOL_BATCHES):
        pool = pool[torch.argsort(split.lengths[pool], stable=True)]
        batches += [make_batch(split, chunk) for chunk in pool.split(batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def none_tag_id(tags: tuple[str, ...]) -> int | None:
    """The id of ``-NONE-`` (treebank traces), or None when the tag set has none."""
    return tags.index(NONE_TAG) if NONE_TAG in tags else None
