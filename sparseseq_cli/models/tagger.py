"""The part-of-speech tagger of the paper's Figure 3 (docs/training.md).

    word ids (T, B) -> embedding (sparse: rare words get short vectors; dropoute, dropouti)
                    -> BiLSTM (nhid per direction, weight drop on hidden-to-hidden weights)
                    -> dropout -> Linear(2*nhid, nhid) -> tanh -> dropout -> Linear(nhid, #tags)

Sentences come padded at the end, (T, B). The head scores only the real tokens (a mask
picks them, time step by time step), so padding takes no part in the loss or the accuracy.
Three parts, ``embedding``, ``bilstm`` and ``head``, so parameters can be counted per part.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparseseq_cli.layers import SparseEmbedding, SparseLSTM


def token_mask(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """(T, B) True at real tokens of sentences padded at the end."""
    return torch.arange(steps, device=device).unsqueeze(1) < lengths.to(device).unsqueeze(0)


def reversal_index(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """(T, B) index that reverses each sentence within its own length, padding left in place.

    lengths 3, 1 with T = 3:  [[2, 0], [1, 1], [0, 2]]   (its own inverse)"""
    t = torch.arange(steps, device=device).unsqueeze(1)
    n = lengths.to(device).unsqueeze(0)
    return torch.where(t < n, n - 1 - t, t)


class BiLSTM(nn.Module):
    """A bidirectional LSTM over sentences padded at the end: one SparseLSTM reads each
    sentence left to right, the other right to left (on the sentence reversed within its
    length), so neither reads padding before a real token. Same outputs as a packed
    bidirectional LSTM, but both directions run the fused kernel: on CPU a packed sequence
    with gradients falls back to per-step operations, about 6x slower."""

    def __init__(self, input_size: int, hidden_size: int, *, wdrop: float = 0.0,
                 wdrop_directions: tuple[str, ...] = ("forward",)):
        super().__init__()
        self.wdrop_directions = tuple(wdrop_directions)
        self.forward_lstm = SparseLSTM(input_size, hidden_size,
                                       wdrop=wdrop if "forward" in wdrop_directions else 0.0)
        self.reverse_lstm = SparseLSTM(input_size, hidden_size,
                                       wdrop=wdrop if "reverse" in wdrop_directions else 0.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x`` (T, B, I) padded at the end -> (T, B, 2H): forward units, then reverse."""
        index = reversal_index(lengths, x.size(0), x.device).unsqueeze(2)       # (T, B, 1)
        ahead, _ = self.forward_lstm(x)                                           # (T, B, H)
        back, _ = self.reverse_lstm(x.gather(0, index.expand_as(x)))              # (T, B, H)
        return torch.cat([ahead, back.gather(0, index.expand_as(back))], dim=2)


class Tagger(nn.Module):
    def __init__(self, ntoken: int, ntags: int, *, emsize: int, nhid: int, emblocks: int = 1,
                 emdensity: float = 1.0, dropouti: float = 0.0, dropoute: float = 0.0,
                 dropouth: float = 0.0, wdrop: float = 0.0,
                 wdrop_directions: tuple[str, ...] = ("forward",)):
        super().__init__()
        self.embedding = SparseEmbedding(ntoken, emsize, blocks=emblocks, density=emdensity,
                                         dropoute=dropoute, dropouti=dropouti)
        self.bilstm = BiLSTM(emsize, nhid, wdrop=wdrop, wdrop_directions=wdrop_directions)
        # the original applies the same dropout (dropouth) before both linear layers
        self.head = nn.Sequential(nn.Dropout(dropouth), nn.Linear(2 * nhid, nhid), nn.Tanh(),
                                  nn.Dropout(dropouth), nn.Linear(nhid, ntags))

    @classmethod
    def from_config(cls, m: Any, ntoken: int, ntags: int) -> "Tagger":
        """From a configuration's ``model`` section (emsize, nhid, ..., wdrop_reverse)."""
        return cls(ntoken, ntags, emsize=m.emsize, nhid=m.nhid, emblocks=m.emblocks,
                   emdensity=m.emdensity, dropouti=m.dropouti, dropoute=m.dropoute,
                   dropouth=m.dropouth, wdrop=m.wdrop,
                   wdrop_directions=("forward", "reverse") if m.wdrop_reverse else ("forward",))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per part (results.json's ``params``); ``embedding_dense`` is
        the V x emsize dense equivalent."""
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        return {"total": count(self), "embedding": count(self.embedding),
                "embedding_dense": self.embedding.num_embeddings * self.embedding.embedding_dim,
                "recurrent": count(self.bilstm), "head": count(self.head)}

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``ids`` (T, B) padded at the end, ``lengths`` (B,).

        Returns tag scores (N, #tags) for the N real tokens, time step by time step;
        :func:`real_tokens` puts gold tags in the same order."""
        hidden = self.bilstm(self.embedding(ids), lengths)                      # (T, B, 2*nhid)
        return self.head(hidden[token_mask(lengths, ids.size(0), ids.device)])  # (N, ntags)


def real_tokens(tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Padded gold tags (T, B) -> (N,) in the order of :meth:`Tagger.forward`'s scores."""
    return tags[token_mask(lengths, tags.size(0), tags.device)]
