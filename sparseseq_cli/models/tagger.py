"""The part-of-speech tagger of the paper's Figure 3 (SPEC.md section 4).

    word ids (T, B) -> embedding (sparse: rare words get short vectors; dropoute, dropouti)
                    -> BiLSTM (nhid per direction, weight drop on hidden-to-hidden weights)
                    -> dropout -> Linear(2*nhid, nhid) -> tanh -> dropout -> Linear(nhid, #tags)

Sentences are padded to (T, B) for the embedding, whose dropouti mask is per sentence, then
packed: the BiLSTM and the head only ever see real tokens, so padding takes no part in
the loss or the accuracy. Three parts, ``embedding``, ``bilstm`` and ``head``, so parameters
can be counted per part.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from sparseseq_cli.layers.sparse_embedding import SparseEmbedding
from sparseseq_cli.layers.sparse_lstm import SparseLSTM


class Tagger(nn.Module):
    def __init__(self, ntoken: int, ntags: int, *, emsize: int, nhid: int, emblocks: int = 1,
                 emdensity: float = 1.0, dropouti: float = 0.0, dropoute: float = 0.0,
                 dropouth: float = 0.0, wdrop: float = 0.0,
                 wdrop_directions: tuple[str, ...] = ("forward",)):
        super().__init__()
        self.embedding = SparseEmbedding(ntoken, emsize, blocks=emblocks, density=emdensity,
                                         dropoute=dropoute, dropouti=dropouti)
        self.bilstm = SparseLSTM(emsize, nhid, wdrop=wdrop, bidirectional=True,
                                 wdrop_directions=wdrop_directions)
        # the original applies the same dropout (dropouth) before both linear layers
        self.head = nn.Sequential(nn.Dropout(dropouth), nn.Linear(2 * nhid, nhid), nn.Tanh(),
                                  nn.Dropout(dropouth), nn.Linear(nhid, ntags))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``ids`` (T, B) padded, ``lengths`` (B,) on the CPU, longest first.

        Returns tag scores (N, #tags) for the N real tokens in packed order (time step by
        time step); :func:`pack_targets` puts gold tags in the same order."""
        embedded = self.embedding(ids)                               # (T, B, emsize)
        packed = pack_padded_sequence(embedded, lengths)
        hidden, _ = self.bilstm(packed)                              # packed (N, 2*nhid)
        return self.head(hidden.data)                                # (N, ntags)


def pack_targets(tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Padded gold tags (T, B) -> (N,) in the order of :meth:`Tagger.forward`'s scores."""
    return pack_padded_sequence(tags, lengths).data
