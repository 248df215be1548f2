"""AWD-LSTM's dropouts (Merity et al., 2017), shared by the sparse layers and the models.

- locked (variational) dropout: one mask per sequence, the same at every time step;
- weight drop (DropConnect): a fresh mask on a weight matrix at every forward call;
- word dropout (``dropoute``): whole rows of the embedding dropped, one mask over the
  vocabulary per forward call.
All scale kept units by 1/(1-p) and are the identity in eval mode or with p = 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def locked_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """A (1, B, D) Bernoulli(1-p)/(1-p) mask for a (T, B, D) tensor: shared over time."""
    return like.new_empty(1, like.size(1), like.size(2)).bernoulli_(1 - p).div_(1 - p)


class LockedDropout(nn.Module):
    """Variational dropout over a time-major (T, B, D) tensor."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"LockedDropout p={p} must be in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor, p: float | None = None) -> torch.Tensor:
        p = self.p if p is None else p
        if not self.training or p == 0:
            return x
        return x * locked_mask(x, p)  # (T, B, D) * (1, B, D)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def weight_drop(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """DropConnect on a weight matrix: gradients flow to the stored weight."""
    if not training or p == 0:
        return weight
    return F.dropout(weight, p, training=True)


def word_mask(num_words: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """One Bernoulli(1-p)/(1-p) factor per vocabulary row (``dropoute``)."""
    return like.new_empty(num_words).bernoulli_(1 - p).div_(1 - p)
