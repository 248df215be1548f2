"""The sparse layers against the dense computation they stand for, on one device.

Each function builds a small layer, runs it and its dense equivalent (``nn.LSTM`` loaded
with ``SparseLSTM.dense_weights()``; ``F.embedding`` and ``h @ E^T + b`` on
``SparseEmbedding.dense_weight()``) on the same inputs, backpropagates the same output
gradients through both, and returns the largest difference over the outputs and every
gradient: what ``sparseseq doctor`` reports and judges.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sparseseq_cli.layers import SparseEmbedding, SparseLSTM

# float32, TF32 off: differences come from summation order only (about 1e-7 relative);
# a wrong block, offset or gradient is orders of magnitude above this bound.
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Difference:
    max_abs_diff: float     # over the outputs and all gradients
    worst_ratio: float      # max over the tensors of diff / (TOLERANCE * max(1, |reference|))
    compared: int           # how many tensors were compared

    @property
    def ok(self) -> bool:
        return self.worst_ratio <= 1   # NaN compares False: a failure


def _difference(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Difference:
    """``pairs``: (sparse result, dense reference). Each tensor is held to TOLERANCE relative
    to its own largest magnitude (at least 1), so small gradients are not judged on the
    scale of large ones."""
    diffs, ratios = [], []
    for a, b in pairs:
        diff = float((a.detach() - b.detach()).abs().max())
        diffs.append(diff)
        ratios.append(diff / (TOLERANCE * max(1.0, float(b.detach().abs().max()))))
    worst = max(ratios, key=lambda r: math.inf if math.isnan(r) else r)
    return Difference(max(diffs, key=lambda d: math.inf if math.isnan(d) else d), worst, len(pairs))


@contextmanager
def _exact_float32() -> Iterator[None]:
    """TF32 off for cuDNN and matmuls (cuDNN's LSTMs use it by default on Ampere and later):
    its 10-bit mantissa would hide a small error under its own rounding."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def lstm_difference(impl: str, device: torch.device, *, seed: int = 0) -> Difference:
    """SparseLSTM(``impl``) against nn.LSTM with its dense weights: bidirectional, k = 3
    overlapping windows, given (h_0, c_0); outputs, h_n, c_n and the gradients of the input,
    h_0, c_0 and every stored weight (against the dense gradient at its place)."""
    torch.manual_seed(seed)
    I, H, T, B = 40, 48, 12, 4
    layer = SparseLSTM(I, H, blocks=3, density=0.6, bidirectional=True, impl=impl).to(device)
    dense = nn.LSTM(I, H, bidirectional=True).to(device)
    dense.load_state_dict(layer.dense_weights())
    x = torch.randn(T, B, I, device=device)
    h0, c0 = torch.randn(2, 2, B, H, device=device)
    weights = torch.randn(3, device=device)   # so that a mix-up of the outputs cannot cancel
    results = []
    with _exact_float32():
        for module in (layer, dense):
            inputs = [t.clone().requires_grad_() for t in (x, h0, c0)]
            out, (h_n, c_n) = module(inputs[0], (inputs[1], inputs[2]))
            (weights[0] * out.sum() + weights[1] * h_n.sum() + weights[2] * c_n.sum()).backward()
            results.append([out, h_n, c_n] + [t.grad for t in inputs])
    pairs = list(zip(*results))
    g = layer.geometry
    for d, sfx in enumerate(("", "_reverse")):
        ref = {name: getattr(dense, name + sfx).grad for name in
               ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
        for comp, (ib, ie), (hb, he) in zip(layer.components, g.input_segments, g.hidden_segments):
            h = he - hb
            pairs += [
                (getattr(comp, "weight_ih_l0" + sfx).grad, ref["weight_ih_l0"].view(4, H, I)[:, hb:he, ib:ie].reshape(4 * h, -1)),
                (getattr(comp, "weight_hh_l0" + sfx).grad, ref["weight_hh_l0"].view(4, H, H)[:, hb:he, hb:he].reshape(4 * h, h)),
                (getattr(comp, "bias_ih_l0" + sfx).grad, ref["bias_ih_l0"].view(4, H)[:, hb:he].reshape(-1)),
                (getattr(comp, "bias_hh_l0" + sfx).grad, ref["bias_hh_l0"].view(4, H)[:, hb:he].reshape(-1)),
            ]
    return _difference(pairs)


def embedding_difference(device: torch.device, *, seed: int = 0) -> Difference:
    """SparseEmbedding lookup and tied decode (with bias) against ``F.embedding`` and
    ``h @ E^T + b`` on the dense matrix with its zeros; outputs and the gradients of the
    hidden vectors, the bias and every stored segment."""
    torch.manual_seed(seed)
    V, d, N = 300, 24, 60
    emb = SparseEmbedding(V, d, blocks=4, density=0.5).to(device)
    W = emb.dense_weight().requires_grad_()
    ids = torch.randint(0, V, (N // 4, 4), device=device)
    ids[0, :2] = torch.tensor([0, V - 1], device=device)   # both ends of the vocabulary
    hidden = torch.randn(N, d, device=device)
    bias = torch.randn(V, device=device)
    g_emb = torch.randn(N // 4, 4, d, device=device)
    g_logits = torch.randn(N, V, device=device)
    results = []
    with _exact_float32():
        for lookup, decode in ((emb, emb.decode),
                               (lambda i: F.embedding(i, W), lambda h, b: h @ W.t() + b)):
            h, b = hidden.clone().requires_grad_(), bias.clone().requires_grad_()
            vectors, logits = lookup(ids), decode(h, b)
            ((vectors * g_emb).sum() + (logits * g_logits).sum()).backward()
            results.append([vectors, logits, h.grad, b.grad])
    pairs = list(zip(*results))
    for (first, end, cols), w in zip(emb.segments, emb.weights):
        pairs.append((w.grad, W.grad[first:end][:, cols]))
    return _difference(pairs)
