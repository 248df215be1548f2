"""SparseEmbedding: shorter vectors for rarer words (docs/method.md).

A V x d embedding made of K column blocks; block j only has rows for the words with index
>= ``starts[j]``. With the vocabulary sorted from rare to frequent, frequent words (high
indices) get all blocks and rare words only the first ones.

Storage: the vocabulary is cut at the distinct block starts into segments; all words of a
segment have the same active columns, so a segment is one dense matrix (its words x its
active columns), and together they hold exactly the trainable parameters:

    V = 8, d = 6, 3 blocks of 2 columns, starts 0, 3, 6:
    words 0-2 | ■■···· |  segment 0: 3 x 2
    words 3-5 | ■■■■·· |  segment 1: 3 x 4
    words 6-7 | ■■■■■■ |  segment 2: 2 x 6

Lookup gathers each word's row from its segment; the tied decoder (logits = h E^T + b) is
one matrix product per segment into its own slice of the vocabulary. Neither ever builds
the V x d matrix.
"""
from __future__ import annotations

import torch
from torch import nn

from sparseseq_cli.layers.dropout import locked_mask, word_mask
from sparseseq_cli.layers.geometry import EmbeddingGeometry, embedding_geometry


class SparseEmbedding(nn.Module):
    """``num_embeddings`` x ``embedding_dim`` embedding with ``blocks`` column blocks at
    parameter ``density``; ``dropoute`` drops whole words, ``dropouti`` embedding
    dimensions (one mask per sequence), both in training mode only."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, blocks: int = 1,
                 density: float = 1.0, dropoute: float = 0.0, dropouti: float = 0.0):
        super().__init__()
        for name, p in (("dropoute", dropoute), ("dropouti", dropouti)):
            if not 0 <= p < 1:
                raise ValueError(f"{name}={p} must be in [0, 1)")
        self.geometry: EmbeddingGeometry = embedding_geometry(
            num_embeddings, embedding_dim, blocks=blocks, density=density)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.dropoute, self.dropouti = dropoute, dropouti
        self.segments = _segments(self.geometry)   # [(first word, end word, columns)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(end - first, len(cols))) for first, end, cols in self.segments)
        for first, end, cols in self.segments:
            if not _is_prefix(cols):
                self.register_buffer(f"cols_{first}", torch.tensor(cols), persistent=False)
        self.reset_parameters()

    def reset_parameters(self, init_range: float = 0.1) -> None:
        with torch.no_grad():
            for w in self.weights:
                w.uniform_(-init_range, init_range)

    def extra_repr(self) -> str:
        g = self.geometry
        return (f"{self.num_embeddings}, {self.embedding_dim}, blocks={g.blocks}, "
                f"density={g.density:.4g}, params={g.params}, dropoute={self.dropoute}, "
                f"dropouti={self.dropouti}")

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The V x d matrix with its fixed zeros (for tests and export; never used inside)."""
        out = self.weights[0].new_zeros(self.num_embeddings, self.embedding_dim)
        for (first, end, cols), w in zip(self.segments, self.weights):
            out[first:end, cols] = w
        return out

    def _layout(self) -> list[tuple[int, int, slice | torch.Tensor]]:
        """(first word, end word, columns): a slice for a prefix of the columns (the usual
        case), else an index tensor."""
        return [(first, end, slice(0, len(cols)) if _is_prefix(cols) else getattr(self, f"cols_{first}"))
                for first, end, cols in self.segments]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` (T, B) -> embeddings (T, B, d)."""
        flat = ids.reshape(-1)
        out = _Lookup.apply(flat, self.embedding_dim, self._layout(), *self.weights)  # (N, d)
        if self.training and self.dropoute > 0:
            # dropping word rows of E before the lookup == scaling each looked-up vector
            out = out * word_mask(self.num_embeddings, self.dropoute, out)[flat].unsqueeze(1)
        out = out.view(*ids.shape, self.embedding_dim)
        if self.training and self.dropouti > 0:
            out = out * locked_mask(out, self.dropouti)          # (T, B, d) * (1, B, d)
        return out

    def decode(self, hidden: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Tied decoder: ``hidden`` (N, d) -> logits (N, V) = hidden @ E^T (+ bias).

        Under ``torch.autocast`` the products run in autocast's type, as an ``nn.Linear``
        would: the inputs are cast before the custom function (the casts carry the gradients
        back to the fp32 weights), which then runs with autocast off so that its forward and
        backward see one type."""
        weights = list(self.weights)
        dtype = _autocast_dtype(hidden.device.type)
        if dtype is not None:
            hidden, weights = hidden.to(dtype), [w.to(dtype) for w in weights]
            bias = None if bias is None else bias.to(dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            return _Decode.apply(hidden, bias, self.num_embeddings, self._layout(), *weights)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The type autocast computes products in on ``device_type``, or None when it is off."""
    if hasattr(torch, "get_autocast_dtype"):        # torch >= 2.4
        enabled = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if enabled else None
    if device_type == "cpu":
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


class _Lookup(torch.autograd.Function):
    """Gather each word's row from its segment into a zero (N, d) output.

    Tokens are sorted once so that each segment's tokens form one contiguous run (one host
    sync per call for the run boundaries, instead of a mask pass over all tokens per
    segment).
    """

    @staticmethod
    def forward(ctx, flat, dim, layout, *weights):
        order = flat.argsort()
        sorted_ids = flat[order]
        firsts = torch.tensor([first for first, _, _ in layout] + [layout[-1][1]],
                              device=flat.device)
        bounds = torch.searchsorted(sorted_ids, firsts).tolist()
        out = weights[0].new_zeros(flat.numel(), dim)
        runs = []
        for (first, _, cols), w, lo, hi in zip(layout, weights, bounds, bounds[1:]):
            tokens, rows = order[lo:hi], sorted_ids[lo:hi] - first
            if isinstance(cols, slice):
                out[tokens, cols] = w[rows]
            else:
                out[tokens.unsqueeze(1), cols] = w[rows]
            runs.append((tokens, rows))
        ctx.layout, ctx.runs = layout, runs
        ctx.shapes = [w.shape for w in weights]
        return out

    @staticmethod
    def backward(ctx, grad):
        grads = []
        for (_, _, cols), (tokens, rows), shape in zip(ctx.layout, ctx.runs, ctx.shapes):
            g = grad[tokens]
            g = g[:, cols] if isinstance(cols, slice) else g.index_select(1, cols)
            grads.append(grad.new_zeros(shape).index_add_(0, rows, g))
        return (None, None, None, *grads)


class _Decode(torch.autograd.Function):
    """logits[:, first:end] = hidden[:, cols] @ W_s^T (+ bias) for every segment.

    Each product is written straight into its column slice of the output (BLAS takes the
    row stride), so the logits are written once, with no concatenation pass.
    """

    @staticmethod
    def forward(ctx, hidden, bias, vocab, layout, *weights):
        logits = hidden.new_empty(hidden.size(0), vocab)
        for (first, end, cols), w in zip(layout, weights):
            h = hidden[:, cols] if isinstance(cols, slice) else hidden.index_select(1, cols)
            if bias is None:
                torch.mm(h, w.t(), out=logits[:, first:end])
            else:
                torch.addmm(bias[first:end], h, w.t(), out=logits[:, first:end])
        ctx.layout = layout
        ctx.has_bias = bias is not None
        ctx.save_for_backward(hidden, *weights)
        return logits

    @staticmethod
    def backward(ctx, grad):
        hidden, *weights = ctx.saved_tensors
        grad_hidden = torch.zeros_like(hidden)
        grad_weights = []
        for (first, end, cols), w in zip(ctx.layout, weights):
            g = grad[:, first:end]                                 # (N, end - first)
            if isinstance(cols, slice):
                grad_hidden[:, cols].addmm_(g, w)
                h = hidden[:, cols]
            else:
                grad_hidden.index_add_(1, cols, g @ w)
                h = hidden.index_select(1, cols)
            grad_weights.append(g.t() @ h)
        grad_bias = grad.sum(0) if ctx.has_bias else None
        return (grad_hidden, grad_bias, None, None, *grad_weights)


def _is_prefix(cols: list[int]) -> bool:
    return cols == list(range(len(cols)))


def _segments(geometry: EmbeddingGeometry) -> list[tuple[int, int, list[int]]]:
    """Cut the vocabulary at the distinct block starts; list each piece's active columns.

    Starts need not increase (the original's rounding can give 0, 3170, 3110), so a
    segment's columns are the union of the blocks that start at or before it.
    """
    offsets = [sum(geometry.widths[:j]) for j in range(geometry.blocks)]
    cuts = sorted(set(geometry.starts) | {geometry.vocab_size})
    out = []
    for first, end in zip(cuts, cuts[1:]):
        cols = [c for j, (start, off) in enumerate(zip(geometry.starts, offsets)) if start <= first
                for c in range(off, off + geometry.widths[j])]
        out.append((first, end, cols))
    return out
