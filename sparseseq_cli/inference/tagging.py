"""``tag``: part-of-speech tags from a trained tagger, and their accuracy on tagged text.

Input is one sentence a line (whitespace tokens; blank lines are skipped) or CoNLL
(``token<TAB>tag``, a blank line between sentences), told apart by a TAB on the first
non-blank line. The given tags take no part in tagging; they give the accuracy, counted as
training counted its dev accuracy: the same batches (``eval_batch_size`` sentences, longest
first), the same counts over all tokens and without ``-NONE-``, on one CPU thread. Tagging a
run's dev split with its best checkpoint thus gives exactly its ``best_dev_acc``. A given tag
the model does not know counts as a miss; words outside the vocabulary are read as ``<unk>``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from sparseseq_cli.corpora.conll import Sentence, parse_conll
from sparseseq_cli.corpora.tag_batches import encode, eval_batches, eval_order, none_tag_id
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.devices import tagger_threads
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import Accuracy, batch_hits
from sparseseq_cli.models.tagger import Tagger, token_mask


@dataclass(frozen=True)
class Tagged:
    """The predicted tags of each sentence, and the accuracy when tags were given."""
    words: list[list[str]]
    tags: list[list[str]]
    accuracy: Optional[Accuracy]
    unk: int

    @property
    def tokens(self) -> int:
        return sum(len(w) for w in self.words)

    def as_dict(self) -> dict[str, Any]:
        acc = self.accuracy
        return {"acc": acc.acc if acc else None, "acc_no_none": acc.acc_no_none if acc else None,
                "tokens": self.tokens, "unk": self.unk,
                "sentences": [{"words": w, "tags": t} for w, t in zip(self.words, self.tags)]}

    def conll(self) -> str:
        """``token<TAB>tag`` lines, a blank line after each sentence."""
        return "".join("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n"
                       for words, tags in zip(self.words, self.tags))


def parse_input(text: str, source: str) -> tuple[list[Sentence], bool]:
    """The sentences of ``text`` and whether it is CoNLL (its tags then hold the gold tags)."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise SparseseqError(f"{source} is empty (no words): give one sentence a line, or "
                             f"token<TAB>tag lines")
    if "\t" in first:
        return parse_conll(text, source), True
    sentences = [Sentence(tuple(line.split()), (), number)
                 for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    return sentences, False


def as_sentences(sentences: Any) -> list[Sentence]:
    """A sequence of sentences, each a string (split on whitespace) or a list of words."""
    if isinstance(sentences, str):
        raise SparseseqError("tag() takes a list of sentences (each a string or a list of words), "
                             "not one string")
    out = [Sentence(tuple(s.split() if isinstance(s, str) else map(str, s)), (), n)
           for n, s in enumerate(sentences, 1)]
    empty = next((s.line for s in out if not s.words), None)
    if empty is not None:
        raise SparseseqError(f"sentence {empty} has no words: give each sentence at least one")
    return out


@torch.no_grad()
def tag_sentences(model: Tagger, vocab: Vocabulary, tags: tuple[str, ...], sentences: list[Sentence], *,
                  gold: bool, batch_size: int, device: torch.device) -> Tagged:
    """Tag ``sentences``; with ``gold``, count the accuracy against their given tags."""
    if not sentences:
        raise SparseseqError("no sentences to tag")
    split = encode([s if gold else Sentence(s.words, ("",) * len(s.words), s.line) for s in sentences],
                   vocab, tags)
    predicted: list[list[str]] = [[] for _ in sentences]
    counts = torch.zeros(4, dtype=torch.long)
    order = eval_order(split).tolist()
    done = 0
    with tagger_threads(device):
        for batch in eval_batches(split, batch_size):
            batch = batch.to(device)
            ids, hits = batch_hits(model, batch.ids, batch.tags, batch.lengths, none_tag_id(tags))
            counts += hits.cpu()
            # back from real tokens, time step by time step, to one column per sentence
            grid = torch.full(batch.ids.shape, -1, dtype=torch.long, device=device)
            grid[token_mask(batch.lengths, grid.size(0), device)] = ids
            grid = grid.cpu()
            for column, length in enumerate(batch.lengths.tolist()):
                predicted[order[done + column]] = [tags[t] for t in grid[:length, column].tolist()]
            done += len(batch.lengths)
    unk = sum(w not in vocab for s in sentences for w in s.words)
    return Tagged([list(s.words) for s in sentences], predicted,
                  Accuracy(*counts.tolist()) if gold else None, unk)
