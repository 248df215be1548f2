"""SparseLSTM: a wide LSTM built from k small dense LSTMs (docs/method.md).

Component c reads a window ``input[..., b_c:e_c]`` (windows overlap) and owns the slice
``[hb_c, he_c)`` of the hidden and cell state (slices are disjoint). Seen as one LSTM of
hidden size H, its input-to-hidden matrix is banded and its hidden-to-hidden matrix is
block-diagonal; only the blocks are stored and trained.

    I = 9, H = 6, k = 3, density 5/9:       W_ih (per gate)      W_hh (per gate)
    input windows [0,5) [2,7) [4,9)          ■■■■■····            ■■····
    hidden slices [0,2) [2,4) [4,6)          ■■■■■····            ■■····
                                             ··■■■■■··            ··■■··
                                             ··■■■■■··            ··■■··
                                             ····■■■■■            ····■■
                                             ····■■■■■            ····■■

Two interchangeable implementations compute the same function from the same tensors
(``impl``):

- ``sequential``: the original code's way, the k component LSTMs one after another, each
  one fused LSTM call (oneDNN on CPU). Its cost follows the real parameter count.
- ``dense``: the block pattern scattered into a dense H-wide weight each forward, then one
  fused LSTM call (cuDNN on CUDA: one kernel launch per step instead of k); pays for the
  zeros in FLOPs, not in storage or trainable parameters.

``auto`` picks ``sequential`` on CPU (measured faster) and ``dense`` on CUDA. Weight drop
(AWD-LSTM's DropConnect on the hidden-to-hidden weights) is applied to each component's
stored matrix at every training forward, a fresh mask each time.
"""
from __future__ import annotations

import enum
import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from sparseseq_cli.layers.dropout import weight_drop
from sparseseq_cli.layers.geometry import LSTMGeometry, lstm_geometry

DIRECTIONS = ("forward", "reverse")


class LSTMImpl(str, enum.Enum):
    AUTO = "auto"
    SEQUENTIAL = "sequential"
    DENSE = "dense"


# one direction's weights in nn.LSTM order: (w_ih (4h, i), w_hh (4h, h), b_ih (4h), b_hh (4h))
Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
WEIGHT_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class SparseLSTM(nn.Module):
    """One LSTM layer with predefined sparseness, shaped like ``nn.LSTM(num_layers=1)``.

    Give either ``blocks`` (k) and ``density`` (input window density), or ``reduce_in`` and
    ``reduce_out`` ("as many parameters as a dense LSTM of input reduce_in*I and hidden
    reduce_out*H"); with neither the layer is a dense LSTM. ``wdrop`` is the weight-drop
    probability on the hidden-to-hidden weights of the directions in ``wdrop_directions``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, blocks: int | None = None,
                 density: float | None = None, reduce_in: float | None = None,
                 reduce_out: float | None = None, wdrop: float = 0.0,
                 bidirectional: bool = False, wdrop_directions: tuple[str, ...] = DIRECTIONS,
                 impl: str = "auto"):
        super().__init__()
        if not 0 <= wdrop < 1:
            raise ValueError(f"wdrop={wdrop} must be in [0, 1)")
        unknown = set(wdrop_directions) - set(DIRECTIONS)
        if unknown:
            raise ValueError(f"wdrop_directions={wdrop_directions!r}: each must be one of {DIRECTIONS}")
        self.geometry: LSTMGeometry = lstm_geometry(
            input_size, hidden_size, blocks=blocks, density=density,
            reduce_in=reduce_in, reduce_out=reduce_out)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bidirectional = bidirectional
        self.wdrop = wdrop
        self.wdrop_directions = tuple(wdrop_directions)
        try:
            self.impl = LSTMImpl(impl)
        except ValueError:
            raise ValueError(f"impl={impl!r} must be one of "
                             f"{', '.join(repr(m.value) for m in LSTMImpl)}") from None
        # nn.LSTM as the parameter container of each component: its names, its init
        # (uniform +-1/sqrt(hidden)), exactly the original's components.
        self.components = nn.ModuleList(
            nn.LSTM(ie - ib, he - hb, bidirectional=bidirectional)
            for (ib, ie), (hb, he) in zip(self.geometry.input_segments, self.geometry.hidden_segments))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def extra_repr(self) -> str:
        g = self.geometry
        return (f"{self.input_size}, {self.hidden_size}, k={g.k}, density={g.density:.4g}, "
                f"params={g.params}, wdrop={self.wdrop}, bidirectional={self.bidirectional}, "
                f"impl={self.impl.value}")

    # ---- weights --------------------------------------------------------------------
    def _component_weights(self, comp: nn.LSTM, direction: int) -> Weights:
        sfx = "_reverse" if direction else ""
        w_ih, w_hh, b_ih, b_hh = (getattr(comp, name + sfx) for name in WEIGHT_NAMES)
        if DIRECTIONS[direction] in self.wdrop_directions:
            w_hh = weight_drop(w_hh, self.wdrop, self.training)
        return w_ih, w_hh, b_ih, b_hh

    def _weights(self) -> list[list[Weights]]:
        """``[direction][component]`` weights, weight drop applied (fresh mask per call)."""
        return [[self._component_weights(comp, d) for comp in self.components]
                for d in range(self.num_directions)]

    def _assemble(self, weights: list[Weights]) -> Weights:
        """Scatter one direction's component blocks into dense (zero-filled) weights."""
        I, H = self.input_size, self.hidden_size
        w0 = weights[0][0]
        w_ih = w0.new_zeros(4, H, I)
        w_hh = w0.new_zeros(4, H, H)
        b_ih = w0.new_zeros(4, H)
        b_hh = w0.new_zeros(4, H)
        for (ib, ie), (hb, he), (c_ih, c_hh, c_bih, c_bhh) in zip(
                self.geometry.input_segments, self.geometry.hidden_segments, weights):
            h = he - hb
            w_ih[:, hb:he, ib:ie] = c_ih.view(4, h, ie - ib)
            w_hh[:, hb:he, hb:he] = c_hh.view(4, h, h)
            b_ih[:, hb:he] = c_bih.view(4, h)
            b_hh[:, hb:he] = c_bhh.view(4, h)
        return w_ih.view(4 * H, I), w_hh.view(4 * H, H), b_ih.view(-1), b_hh.view(-1)

    @torch.no_grad()
    def dense_weights(self) -> dict[str, torch.Tensor]:
        """The equivalent ``nn.LSTM(I, H, bidirectional=...)`` state dict, zeros outside
        the pattern (weight drop not applied)."""
        out = {}
        for d in range(self.num_directions):
            sfx = "_reverse" if d else ""
            parts = [tuple(getattr(c, name + sfx) for name in WEIGHT_NAMES) for c in self.components]
            for name, tensor in zip(WEIGHT_NAMES, self._assemble(parts)):
                out[name + sfx] = tensor.clone()
        return out

    # ---- forward ----------------------------------------------------------------------
    def forward(self, input, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``input`` (T, B, I) or a PackedSequence; ``hx`` = (h_0, c_0), each
        (directions, B, H). Returns ``output`` (T, B, directions*H) (packed if the input
        was) and ``(h_n, c_n)``, each (directions, B, H)."""
        packed = isinstance(input, PackedSequence)
        if packed:
            batch = int(input.batch_sizes[0])
            data = input.data
        else:
            if input.dim() != 3 or input.size(2) != self.input_size:
                raise ValueError(f"SparseLSTM expects input (T, B, {self.input_size}), "
                                 f"got {tuple(input.shape)}")
            batch = input.size(1)
            data = input
        if hx is None:
            zeros = data.new_zeros(self.num_directions, batch, self.hidden_size)
            hx = (zeros, zeros)
        elif packed and input.sorted_indices is not None:
            # nn.LSTM's convention: hx is in the caller's batch order
            hx = tuple(h.index_select(1, input.sorted_indices) for h in hx)
        impl = self._resolve_impl(data)
        run = self._forward_dense if impl is LSTMImpl.DENSE else self._forward_sequential
        if packed:
            out, h_n, c_n = run(data, hx, input.batch_sizes)
            if input.unsorted_indices is not None:
                h_n = h_n.index_select(1, input.unsorted_indices)
                c_n = c_n.index_select(1, input.unsorted_indices)
            out = PackedSequence(out, input.batch_sizes, input.sorted_indices,
                                 input.unsorted_indices)
            return out, (h_n, c_n)
        out, h_n, c_n = run(data, hx, None)
        return out, (h_n, c_n)

    def _resolve_impl(self, data: torch.Tensor) -> LSTMImpl:
        if self.impl is not LSTMImpl.AUTO:
            return self.impl
        # CPU: k fused oneDNN calls on the small blocks beat one call on the zero-filled
        # dense weights (2.25x the FLOPs for the paper's middle layer); `sparseseq bench`
        # measures it. CUDA: one cuDNN call instead of k kernel launches per time step.
        return LSTMImpl.DENSE if data.is_cuda or self.geometry.k == 1 else LSTMImpl.SEQUENTIAL

    @staticmethod
    def _fused(x, hx, flat, batch_sizes, bidirectional, training):
        """One fused (cuDNN/oneDNN) LSTM call on explicit weights, as nn.LSTM makes."""
        with warnings.catch_warnings():
            # cuDNN warns when weights are not one flattened buffer; ours are rebuilt (weight
            # drop, assembly) every forward, so the copy it mentions is the expected path.
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            if batch_sizes is None:
                return torch.lstm(x, hx, flat, True, 1, 0.0, training, bidirectional, False)
            return torch.lstm(x, batch_sizes, hx, flat, True, 1, 0.0, training, bidirectional)

    def _forward_dense(self, x, hx, batch_sizes):
        flat = [t for d_weights in self._weights() for t in self._assemble(d_weights)]
        out, h_n, c_n = self._fused(x, hx, flat, batch_sizes, self.bidirectional, self.training)
        return out, h_n, c_n

    def _forward_sequential(self, x, hx, batch_sizes):
        weights = self._weights()
        D = self.num_directions
        outs, hs, cs = [], [], []
        for c, ((ib, ie), (hb, he)) in enumerate(zip(self.geometry.input_segments,
                                                     self.geometry.hidden_segments)):
            flat = [t for d in range(D) for t in weights[d][c]]
            h0 = hx[0][:, :, hb:he].contiguous()
            c0 = hx[1][:, :, hb:he].contiguous()
            out, h_n, c_n = self._fused(x[..., ib:ie], (h0, c0), flat, batch_sizes,
                                        self.bidirectional, self.training)
            outs.append(out.unflatten(-1, (D, he - hb)))   # (..., D, h_c)
            hs.append(h_n)
            cs.append(c_n)
        # nn.LSTM's layout: all forward units, then all reverse units
        out = torch.cat(outs, dim=-1).flatten(-2)            # (..., D*H)
        return out, torch.cat(hs, dim=2), torch.cat(cs, dim=2)
