"""Which LSTM layers of the language model are sparse, and by how much (docs/training.md).

Pure arithmetic (no torch), so configuration checks and parameter counts can use it without
building a model. A layer is described by ``(input_size, hidden_size, reduce_in, reduce_out)``:
"as many parameters as a dense LSTM of input reduce_in*I and hidden reduce_out*H".
"""
from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class SparseMode(str, Enum):
    DIRECT = "direct"                # every layer dense
    SPARSE_HIDDEN = "sparse_hidden"  # wide hidden layers, sparse where they meet
    SPARSE_EMB = "sparse_emb"        # the layers touching the embedding are reduced
    SPARSE_ALL = "sparse_all"        # every layer reduced by the same fraction


class LayerSpec(NamedTuple):
    input_size: int
    hidden_size: int
    reduce_in: float
    reduce_out: float


def layer_reductions(mode: SparseMode | str, nlayers: int, fract: float) -> list[tuple[float, float]]:
    """(reduce_in, reduce_out) per layer, first to last."""
    mode = SparseMode(mode)
    if mode is SparseMode.DIRECT:
        return [(1.0, 1.0)] * nlayers
    if mode is SparseMode.SPARSE_HIDDEN:
        if nlayers == 1:
            return [(1.0, 1.0)]
        return [(1.0, fract)] + [(fract, fract)] * (nlayers - 2) + [(fract, 1.0)]
    if nlayers < 2:
        raise ValueError(f"sparse_mode {mode.value} needs nlayers >= 2, got {nlayers}")
    if mode is SparseMode.SPARSE_EMB:
        return [(fract, 1.0)] + [(1.0, 1.0)] * (nlayers - 2) + [(1.0, fract)]
    return [(fract, fract)] * nlayers


def lstm_stack(emsize: int, nhid: int, nhidlast: int, nlayers: int, mode: SparseMode | str,
               fract: float) -> list[LayerSpec]:
    """The LSTM layers of the language model: emsize -> nhid -> ... -> nhidlast."""
    sizes = [emsize] + [nhid] * (nlayers - 1) + [nhidlast]
    return [LayerSpec(sizes[l], sizes[l + 1], ri, ro)
            for l, (ri, ro) in enumerate(layer_reductions(mode, nlayers, fract))]
