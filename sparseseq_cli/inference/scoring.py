"""``score``: log-probabilities of lines of text under a trained language model.

Two ways to read the lines (each line's words, then ``<eos>``, as the training data):

- **continuous** (the default): the lines are one text, the hidden state carried from line
  to line, read in chunks of ``bptt`` tokens by the evaluation pass eval-lm uses
  (``models/evaluation.py``). The file's first word only starts the text: like eval-lm,
  nothing predicts it, so the first line counts one token less. Scoring a split's file
  therefore gives exactly eval-lm's loss on that split (with batch size 1, the test split's).
- **independent**: every line from a fresh state, after an ``<eos>`` (the start of a
  sentence, as the model saw it in training), so all its words and its ``<eos>`` are
  predicted. Lines of similar length are padded and scored together, the padding left out
  of the sums: each line's figures are those of scoring it alone.

Log-probabilities are natural logs; a line's perplexity is exp(-logprob / tokens).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from sparseseq_cli.corpora.lm_data import EOS, batchify, token_ids, token_stream
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import perplexity, stream_nll
from sparseseq_cli.models.language_model import LanguageModel

# Independent lines are scored this many at a time at most, and a batch holds at most
# BATCH_TOKENS padded tokens: the log-probabilities of a chunk are bptt x lines x V floats
# (70 x 32 x 10,000 x 4 bytes = 90 MB for PTB).
BATCH_LINES = 32
BATCH_TOKENS = 32 * 40


@dataclass(frozen=True)
class LineScore:
    line: int          # 1-based
    text: str          # the line's words, joined by single spaces
    tokens: int        # predicted tokens: the words and the <eos> (see the module docstring)
    logprob: float     # natural log
    unk: int           # words outside the vocabulary, scored as <unk>

    @property
    def ppl(self) -> Optional[float]:
        return perplexity(-self.logprob / self.tokens) if self.tokens else None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "tokens": self.tokens, "logprob": self.logprob,
                "ppl": self.ppl, "unk": self.unk}


@dataclass(frozen=True)
class Scores:
    """The totals over all lines (``loss``: mean NLL per predicted token) and each line's."""
    loss: float
    tokens: int
    unk: int
    independent: bool
    sentences: list[LineScore]

    @property
    def ppl(self) -> float:
        return perplexity(self.loss)

    @property
    def logprob(self) -> float:
        return -self.loss * self.tokens

    def as_dict(self) -> dict[str, Any]:
        return {"ppl": self.ppl, "loss": self.loss, "logprob": self.logprob, "tokens": self.tokens,
                "unk": self.unk, "independent": self.independent,
                "sentences": [s.as_dict() for s in self.sentences]}


def split_lines(lines: Any) -> list[list[str]]:
    """Text (a string of lines) or a sequence of lines (strings, or lists of words) as words
    per line."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [line.split() if isinstance(line, str) else [str(w) for w in line] for line in lines]


def _check_words(lines: list[list[str]], source: str) -> None:
    if not any(lines):
        raise SparseseqError(f"{source} is empty (no words): give text, one sentence a line")


def _line_scores(lines: list[list[str]], nll: list[float], counts: list[int], unk: list[int]) -> list[LineScore]:
    return [LineScore(i + 1, " ".join(words), counts[i], -nll[i], unk[i]) for i, words in enumerate(lines)]


def score_continuous(model: LanguageModel, vocab: Vocabulary, lines: list[list[str]], *, bptt: int,
                     device: torch.device, source: str = "the text") -> Scores:
    """The lines as one text (see the module docstring)."""
    _check_words(lines, source)
    ids, missing = token_ids(token_stream(lines), vocab, source)
    result = stream_nll(model, batchify(ids, 1).to(device), bptt, per_token=True)
    # stream position p belongs to line_of[p]; position 0 is never predicted
    sizes = torch.tensor([len(words) + 1 for words in lines])
    line_of = torch.repeat_interleave(torch.arange(len(lines)), sizes)
    nll = torch.cat([torch.zeros(1, dtype=torch.float64), result.per_token[:, 0].double().cpu()])
    per_line = torch.zeros(len(lines), dtype=torch.float64).index_add_(0, line_of, nll)
    counts = sizes.clone()
    counts[0] -= 1
    unk = torch.bincount(line_of[missing], minlength=len(lines)) if missing else torch.zeros(len(lines), dtype=torch.long)
    total = result.total.item()
    return Scores(total / result.count, result.count, len(missing), False,
                  _line_scores(lines, per_line.tolist(), counts.tolist(), unk.tolist()))


def score_independent(model: LanguageModel, vocab: Vocabulary, lines: list[list[str]], *, bptt: int,
                      device: torch.device, source: str = "the text") -> Scores:
    """Every line from a fresh state after an ``<eos>`` (see the module docstring)."""
    _check_words(lines, source)
    if EOS not in vocab:
        raise SparseseqError(f"the model's vocabulary has no {EOS}: it was not trained on lines of "
                             f"text, so lines cannot be scored one by one; drop --independent")
    eos = vocab[EOS]
    encoded, unk = [], []
    for number, words in enumerate(lines, 1):
        ids, missing = token_ids(words, vocab, f"{source}, line {number},")
        encoded.append(torch.cat([ids.new_tensor([eos]), ids, ids.new_tensor([eos])]))
        unk.append(len(missing))
    nll = [0.0] * len(lines)
    for batch in _batches([len(e) for e in encoded]):
        width = max(len(encoded[i]) for i in batch)
        data = torch.full((width, len(batch)), eos, dtype=torch.long)
        for column, i in enumerate(batch):
            data[:len(encoded[i]), column] = encoded[i]
        per_token = stream_nll(model, data.to(device), bptt, per_token=True).per_token.double().cpu()
        predicted = torch.tensor([len(encoded[i]) - 1 for i in batch])
        mask = torch.arange(width - 1).unsqueeze(1) < predicted.unsqueeze(0)   # padding: False
        for i, value in zip(batch, (per_token * mask).sum(0).tolist()):
            nll[i] = value
    counts = [len(words) + 1 for words in lines]
    tokens = sum(counts)
    return Scores(sum(nll) / tokens, tokens, sum(unk), True, _line_scores(lines, nll, counts, unk))


def _batches(lengths: list[int]) -> list[list[int]]:
    """Line indices in batches of similar length (longest first), within the limits above."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        # sorted longest first, so a batch's first line sets its padded width
        if batches and len(batches[-1]) < BATCH_LINES and \
                (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= BATCH_TOKENS:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
