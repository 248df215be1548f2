"""Layer geometry of the paper's two sparse layers: pure arithmetic, no torch.

Everything here reproduces the original research code number for number (its float
operations in the same order, its integer truncations), so that a preset gives the same
windows, block starts and parameter counts as the paper. docs/method.md explains the
formulas and works through examples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Segment = tuple[int, int]


def lstm_params(input_size: int, hidden_size: int) -> int:
    """Parameters of one direction of a dense one-layer ``nn.LSTM`` (two bias vectors)."""
    return 4 * (input_size * hidden_size + hidden_size * hidden_size + 2 * hidden_size)


def segments(total: int, k: int, density: float) -> list[Segment]:
    """k half-open windows ``[b, e)`` over ``range(total)``, each ``total*density`` wide,
    spread evenly with equal overlaps, first at 0 and last ending at ``total``."""
    if k == 1 and density == 1:
        return [(0, total)]
    if not (k > 1 and density >= 1 / k):
        raise ValueError(
            f"cannot cut {total} units into k={k} windows of density {density}: "
            f"need k > 1 and density >= 1/k, or k = 1 with density = 1")
    overlap = total * (k * density - 1.0) / (k - 1)
    begins = [c * (total * density - overlap) for c in range(k)]
    ends = [b + total * density for b in begins]
    begins = [int(b) for b in begins]
    ends = [int(e + 1e-7) for e in ends]  # the original's guard against 0.9999999 widths
    ends[-1] = total
    if min(e - b for b, e in zip(begins, ends)) <= 0:
        raise ValueError(
            f"cutting {total} units into k={k} windows of density {density} gives an empty window")
    covered = set()
    for b, e in zip(begins, ends):
        covered.update(range(b, e))
    if len(covered) != total:
        raise ValueError(
            f"k={k} windows of density {density} over {total} units leave units uncovered")
    return list(zip(begins, ends))


@dataclass(frozen=True)
class LSTMGeometry:
    """Where each of the k component LSTMs reads and writes.

    Component c reads ``input[..., b:e]`` for ``(b, e) = input_segments[c]`` and owns the
    hidden/cell slice ``hidden_segments[c]``.  ``params`` counts one direction, biases
    included; ``target_params`` is the dense LSTM the reductions aimed at (None when the
    layer was given as blocks/density).
    """

    input_size: int
    hidden_size: int
    k: int
    density: float
    input_segments: tuple[Segment, ...]
    hidden_segments: tuple[Segment, ...]
    params: int
    target_params: int | None = None
    reduce_in: float | None = None
    reduce_out: float | None = None

    @property
    def dense_params(self) -> int:
        """Parameters of the dense LSTM of the same width (the layer's zeros included)."""
        return lstm_params(self.input_size, self.hidden_size)

    @property
    def input_widths(self) -> tuple[int, ...]:
        return tuple(e - b for b, e in self.input_segments)


def _blocks_from_reduction(input_size: int, hidden_size: int, reduce_in: float,
                           reduce_out: float) -> tuple[int, float]:
    """Smallest k, then the input density, giving the parameters of a dense LSTM of
    input ``reduce_in*I`` and hidden ``reduce_out*H`` (docs/method.md, "reduce_in/reduce_out")."""
    I, H, ai, ao = input_size, hidden_size, reduce_in, reduce_out
    denom = ai * ao * I + ao * ao * H + 2 * ao - 2
    if denom <= 0:
        raise ValueError(
            f"reduce_in={ai}, reduce_out={ao} are too small for a SparseLSTM of input {I} "
            f"and hidden {H}: the target dense LSTM has no parameters to spend")
    lower = (I + H) / denom
    k = int(math.ceil(lower))
    if lower > H or k >= I:
        raise ValueError(
            f"reduce_in={ai}, reduce_out={ao} are too small for a SparseLSTM of input {I} "
            f"and hidden {H}: it would need k={k} components (at most {min(H, I - 1)} possible)")
    density = (ai * ao * I + ao * ao * H + 2 * ao - H / k - 2) / I
    if density > 1:
        density = 1.0  # the budget can't be spent even with full overlap: fewer params
    if density < 1 / k:
        raise ValueError(
            f"reduce_in={ai}, reduce_out={ao} give input density {density:.6g} < 1/k = "
            f"{1 / k:.6g} for k={k} components: the windows could not cover the input of size {I}")
    return k, density


def lstm_geometry(input_size: int, hidden_size: int, *, blocks: int | None = None,
                  density: float | None = None, reduce_in: float | None = None,
                  reduce_out: float | None = None) -> LSTMGeometry:
    """Geometry of a SparseLSTM given either ``blocks`` and ``density`` or ``reduce_in``
    and ``reduce_out`` (never both). With none given the layer is dense (k = 1)."""
    if input_size < 1 or hidden_size < 1:
        raise ValueError(f"input_size={input_size} and hidden_size={hidden_size} must be >= 1")
    by_blocks = blocks is not None or density is not None
    by_reduction = reduce_in is not None or reduce_out is not None
    if by_blocks and by_reduction:
        raise ValueError("give either blocks/density or reduce_in/reduce_out, not both")
    target = None
    if by_reduction:
        reduce_in = 1.0 if reduce_in is None else reduce_in
        reduce_out = 1.0 if reduce_out is None else reduce_out
        for name, value in (("reduce_in", reduce_in), ("reduce_out", reduce_out)):
            if not 0 < value <= 1:
                raise ValueError(f"{name}={value} must be in (0, 1]")
        k, dens = _blocks_from_reduction(input_size, hidden_size, reduce_in, reduce_out)
        # the original's equivalent dense layer rounds the reduced sizes
        target = lstm_params(round(input_size * reduce_in), round(hidden_size * reduce_out))
    else:
        k = 1 if blocks is None else blocks
        dens = (1.0 if k == 1 else 1.0 / k) if density is None else density
        if k < 1 or not 1 / k <= dens <= 1 or (k == 1 and dens != 1):
            raise ValueError(
                f"blocks={k}, density={dens} is infeasible: need k >= 1 and 1/k <= density <= 1 "
                f"(k = 1 needs density = 1)")
    ins = segments(input_size, k, dens)
    hids = segments(hidden_size, k, 1.0 / k)
    params = sum(lstm_params(ie - ib, he - hb) for (ib, ie), (hb, he) in zip(ins, hids))
    return LSTMGeometry(input_size, hidden_size, k, dens, tuple(ins), tuple(hids), params,
                        target, reduce_in, reduce_out)


def reduction_factor(density: float, blocks: int) -> float:
    """alpha in [0, 1] with ``sum(alpha**j for j < blocks) / blocks == density``, by the
    bisection of scipy.optimize.bisect(xtol=1e-6) that the original used (same floats)."""
    def f(a: float) -> float:
        total = 0.0
        for j in range(blocks):
            total += a ** j
        return total / blocks - density

    xa, xb = 0.0, 1.0
    fa = f(xa)
    if fa == 0:
        return xa
    if f(xb) == 0:
        return xb
    dm = xb - xa
    xm = xa
    for _ in range(100):
        dm *= 0.5
        xm = xa + dm
        fm = f(xm)
        if fm * fa >= 0:
            xa = xm
        if fm == 0 or abs(dm) < 1e-6 + 8.881784197001252e-16 * abs(xm):
            return xm
    return xm


@dataclass(frozen=True)
class EmbeddingGeometry:
    """Block j has ``widths[j]`` columns and rows only for words ``>= starts[j]``;
    ``density`` is the density obtained, as the original computed it (rounding can make it
    differ slightly from the one asked for)."""

    vocab_size: int
    dim: int
    starts: tuple[int, ...]
    widths: tuple[int, ...]
    density: float
    params: int

    @property
    def dense_params(self) -> int:
        return self.vocab_size * self.dim

    @property
    def blocks(self) -> int:
        return len(self.widths)


def embedding_geometry(vocab_size: int, dim: int, *, blocks: int = 1,
                       density: float = 1.0) -> EmbeddingGeometry:
    """Block starts and widths of a SparseEmbedding (the original's algorithm; docs/method.md)."""
    V, d, D = vocab_size, dim, density
    if V < 1 or d < 1:
        raise ValueError(f"vocab_size={V} and dim={d} must be >= 1")
    if blocks < 1:
        raise ValueError(f"blocks={blocks} must be >= 1")
    if not 0 < D <= 1:
        raise ValueError(f"density={D} must be in (0, 1]")
    K = min(blocks, d)
    if K > 1 and D < 1 / K:
        raise ValueError(f"density={D} is below 1/blocks = {1 / K:.6g} for blocks={K}: "
                         f"every word needs at least the first block")
    if K == 1 and D != 1:
        raise ValueError(f"density={D} needs blocks > 1 (one block is a dense embedding)")
    w = d // K
    widths, starts, used = [w], [0], w * V
    v_rem, d_rem, k_rem, dens_rem = V, d, K, D
    for _ in range(1, K - 1):
        widths.append(w)
        if dens_rem > 0:
            a = reduction_factor(dens_rem, k_rem)
            cut = int(math.ceil(v_rem * (1 - a)))
            v_rem -= cut
            d_rem -= w
            k_rem -= 1
            starts.append(starts[-1] + cut)
            if v_rem * d_rem > 0 and V * d * D - used > 0:
                dens_rem = min(1.0, (V * d * D - used) / (v_rem * d_rem))
                used += v_rem * w
            else:
                dens_rem = 0
        else:
            starts.append(V)
    if K > 1:
        w_last = d - sum(widths)
        widths.append(w_last)
        left = max(0, math.floor(V * d * D) - used)
        v_last = int(round(left / w_last))
        starts.append(V - v_last)
        used += w_last * v_last
    params = sum((V - s) * wd for s, wd in zip(starts, widths))
    return EmbeddingGeometry(V, d, tuple(starts), tuple(widths), used / (V * d), params)
