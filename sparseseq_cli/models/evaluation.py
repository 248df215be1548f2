"""The evaluation passes of both models, shared by training (validation, test, eval-lm) and
inference (score, tag), so that a score or a tagging reproduces the training numbers.

- :func:`stream_nll`: a language model over batch columns in chunks of ``bptt`` rows, the
  hidden state carried from chunk to chunk; the summed NLL and, on request, each token's.
- :func:`predict_tags` and :func:`count_hits`: a tagger's argmax tags and the accuracy
  counts (all tokens, and without ``-NONE-``) behind :class:`Accuracy`.

Nothing here knows about processes, progress bars or files: training adds its torchrun sum
and bar around them (``training/lm_loop.py``, ``training/tagging_loop.py``).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.models.tagger import Tagger, real_tokens


# The largest loss whose perplexity is still a float (e^709.78 is the largest double); a
# loss beyond it only comes from a diverged run (a uniform guess over V words costs ln V).
MAX_LOSS = math.log(sys.float_info.max)


def autocast(precision: str, device: torch.device):
    """The ``torch.autocast`` of a run's ``train.precision`` ("fp32": none), so that training,
    eval-lm and the trained-model commands compute alike."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(getattr(precision, "value", precision)))
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def perplexity(loss: float) -> float:
    """exp(loss), infinite where exp would overflow a float."""
    return math.exp(loss) if loss < MAX_LOSS else math.inf


# ---- language model -------------------------------------------------------------------------
@dataclass
class StreamNLL:
    total: torch.Tensor                 # float64 scalar: the summed NLL of the predicted tokens
    count: int                          # predicted tokens
    per_token: Optional[torch.Tensor]   # (rows - 1, B) NLL of data[1:], when asked (else None)


def chunk_starts(data: torch.Tensor, bptt: int, max_batches: Optional[int] = None) -> range:
    """The first rows of the chunks :func:`stream_nll` runs (for a progress bar's length)."""
    starts = range(0, len(data) - 1, bptt) if data.size(1) else range(0)
    return starts[:max_batches] if max_batches is not None else starts


@torch.no_grad()
def stream_nll(model: LanguageModel, data: torch.Tensor, bptt: int, *, max_batches: Optional[int] = None,
               bar: Any = None, per_token: bool = False) -> StreamNLL:
    """NLL of every token of ``data`` (rows, B) but the first row, each column one text read
    from a fresh state, in chunks of ``bptt`` rows. ``bar``: anything with ``advance()``."""
    model.eval()
    hidden = model.init_hidden(data.size(1))
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    count = 0
    pieces = []
    for i in chunk_starts(data, bptt, max_batches):
        rows = min(bptt, len(data) - 1 - i)
        out = model(data[i:i + rows], hidden)
        hidden = out.hidden
        y = data[i + 1:i + 1 + rows].reshape(-1)
        # the summed loss exactly as validation has always computed it (so score and eval-lm
        # agree to the last bit); the per-token values are taken beside it, not summed
        total += F.nll_loss(out.log_probs, y, reduction="sum")
        count += y.numel()
        if per_token:
            pieces.append(-out.log_probs.gather(1, y.unsqueeze(1)).view(rows, -1))
        if bar is not None:
            bar.advance()
    nll = None
    if per_token:
        nll = torch.cat(pieces) if pieces else data.new_zeros(0, data.size(1), dtype=torch.float32)
    return StreamNLL(total, count, nll)


# ---- tagger ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int
    correct_no_none: int
    total_no_none: int

    @property
    def acc(self) -> float:
        return self.correct / self.total

    @property
    def acc_no_none(self) -> float:
        return self.correct_no_none / self.total_no_none if self.total_no_none else float("nan")


@torch.no_grad()
def predict_tags(model: Tagger, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The highest-scoring tag of every real token of ``ids`` (T, B), in the order of
    :func:`real_tokens` (time step by time step)."""
    model.eval()
    return model(ids, lengths).argmax(dim=1)


def count_hits(predicted: torch.Tensor, gold: torch.Tensor, none_id: Optional[int]) -> torch.Tensor:
    """(4,) long: correct, tokens, correct without ``-NONE-``, tokens without ``-NONE-``
    (the fields of :class:`Accuracy`); a gold id the tag set lacks (-1) is never correct."""
    hit = predicted == gold
    real = gold != none_id if none_id is not None else torch.ones_like(hit)
    return torch.stack([hit.sum(), hit.new_tensor(hit.numel(), dtype=torch.long),
                        (hit & real).sum(), real.sum()])


def batch_hits(model: Tagger, ids: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor,
               none_id: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One padded batch's predictions (real tokens, time step by time step) and its counts."""
    predicted = predict_tags(model, ids, lengths)
    return predicted, count_hits(predicted, real_tokens(tags, lengths), none_id)
