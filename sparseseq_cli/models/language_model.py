"""AWD-LSTM language model with predefined sparseness (docs/training.md).

    ids (T, B)
      -> SparseEmbedding (emsize; sparse with emblocks/emdensity; dropoute, dropouti inside)
      -> nlayers SparseLSTMs, emsize -> nhid -> ... -> nhidlast, locked dropout dropouth
         between them; sparse_mode decides each layer's (reduce_in, reduce_out)
      -> locked dropout ``dropout`` on the last output
      -> [Mixture of Softmaxes: tanh(Linear) to n_experts latent vectors, dropout dropoutl]
      -> tied decoder: the embedding's transpose (SparseEmbedding.decode skips its zeros)
      -> log-softmax (log-space mixture for MoS)

Every LSTM layer is a SparseLSTM; a dense layer is simply one with k = 1.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from sparseseq_cli.layers import LockedDropout, SparseEmbedding, SparseLSTM
from sparseseq_cli.models.sparse_modes import SparseMode, lstm_stack

Hidden = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each (1, B, H_l)


class LMOutput(NamedTuple):
    log_probs: torch.Tensor    # (T*B, V)
    hidden: Hidden             # the state after the last step
    raw_last: torch.Tensor     # (T, B, nhidlast) last LSTM output before dropout (for TAR)
    dropped_last: torch.Tensor  # (T, B, nhidlast) the same after dropout (for AR)


class LanguageModel(nn.Module):
    """Keyword arguments carry the configuration's names (``model`` section)."""

    def __init__(self, vocab_size: int, *, emsize: int = 400, nhid: int = 1150,
                 nhidlast: Optional[int] = None, nlayers: int = 3, dropout: float = 0.4,
                 dropouth: float = 0.25, dropouti: float = 0.4, dropoute: float = 0.1,
                 wdrop: float = 0.5, dropoutl: Optional[float] = None, n_experts: int = 1,
                 emblocks: int = 1, emdensity: float = 1.0,
                 sparse_mode: SparseMode | str = SparseMode.DIRECT, sparse_fract: float = 1.0,
                 impl: str = "auto"):
        super().__init__()
        self.vocab_size, self.emsize = vocab_size, emsize
        self.nhidlast = emsize if nhidlast is None else nhidlast
        self.dropout, self.dropouth = dropout, dropouth
        self.dropoutl = dropouth if dropoutl is None else dropoutl
        self.n_experts = n_experts
        self.encoder = SparseEmbedding(vocab_size, emsize, blocks=emblocks, density=emdensity,
                                       dropoute=dropoute, dropouti=dropouti)
        self.rnns = nn.ModuleList(
            SparseLSTM(spec.input_size, spec.hidden_size, reduce_in=spec.reduce_in,
                       reduce_out=spec.reduce_out, wdrop=wdrop, impl=impl)
            for spec in lstm_stack(emsize, nhid, self.nhidlast, nlayers, sparse_mode, sparse_fract))
        self.lockdrop = LockedDropout()
        # The decoder is tied to the embedding, so it reads emsize-wide vectors; a latent
        # projection is needed for MoS or when the last layer is not emsize wide.
        self.latent = None
        if n_experts > 1 or self.nhidlast != emsize:
            self.latent = nn.Sequential(nn.Linear(self.nhidlast, n_experts * emsize), nn.Tanh())
        self.prior = nn.Linear(self.nhidlast, n_experts, bias=False) if n_experts > 1 else None
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))

    @classmethod
    def from_config(cls, model: Any, vocab_size: int) -> "LanguageModel":
        """From a configuration's ``model`` section (a dataclass with these arguments' names)."""
        return cls(vocab_size, **dataclasses.asdict(model))

    def init_hidden(self, batch_size: int) -> Hidden:
        weight = self.decoder_bias
        return [(weight.new_zeros(1, batch_size, rnn.hidden_size),
                 weight.new_zeros(1, batch_size, rnn.hidden_size)) for rnn in self.rnns]

    def forward(self, ids: torch.Tensor, hidden: Hidden) -> LMOutput:
        x = self.encoder(ids)                                       # (T, B, emsize)
        new_hidden: Hidden = []
        for l, rnn in enumerate(self.rnns):
            raw, state = rnn(x, hidden[l])                          # (T, B, H_l)
            new_hidden.append(state)
            x = self.lockdrop(raw, self.dropouth) if l < len(self.rnns) - 1 else raw
        output = self.lockdrop(raw, self.dropout)                   # (T, B, nhidlast)
        return LMOutput(self._log_probs(output), new_hidden, raw, output)

    def _log_probs(self, output: torch.Tensor) -> torch.Tensor:
        if self.latent is None:
            logits = self.encoder.decode(output.reshape(-1, self.emsize), self.decoder_bias)
            return F.log_softmax(logits, dim=-1)                    # (T*B, V)
        latent = self.lockdrop(self.latent(output), self.dropoutl)  # (T, B, E*emsize)
        logits = self.encoder.decode(latent.reshape(-1, self.emsize), self.decoder_bias)
        log_probs = F.log_softmax(logits, dim=-1)                   # (T*B*E, V)
        if self.prior is None:
            return log_probs
        # log sum_e prior_e * softmax_e, in log space (the original added 1e-8 to the
        # probabilities before the log instead)
        log_prior = F.log_softmax(self.prior(output).reshape(-1, self.n_experts), dim=-1)
        return torch.logsumexp(log_probs.view(-1, self.n_experts, self.vocab_size)
                               + log_prior.unsqueeze(-1), dim=1)    # (T*B, V)

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per part (results.json's ``params``)."""
        def count(module: Optional[nn.Module]) -> int:
            return 0 if module is None else sum(p.numel() for p in module.parameters())

        return {"total": count(self), "embedding": count(self.encoder),
                "embedding_dense": self.vocab_size * self.emsize, "recurrent": count(self.rnns),
                "decoder_bias": self.decoder_bias.numel(),
                "mos": count(self.latent) + count(self.prior), "head": 0}
