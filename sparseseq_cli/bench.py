"""``sparseseq bench``: forward+backward time of the sparse layers against dense ones.

Every candidate is timed in train mode on the same inputs; the candidates take turns
(round robin), so that a slow patch of a busy machine hits all of them alike. A ratio is
the median over the rounds of candidate / reference within the round, reported with the
interquartile range of those per-round ratios: how far the figure can be trusted.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.layers import (LSTMImpl, SparseEmbedding, SparseLSTM, embedding_geometry,
                                  lstm_geometry)


@dataclass(frozen=True)
class BenchSettings:
    lstm_size: int = 1725          # the paper's middle layer: I = H = 1725
    reduce: float = 0.66666        # as many parameters as a dense 1150 x 1150 LSTM
    seq_len: int = 70
    batch_size: int = 20
    vocab_size: int = 10000
    emsize: int = 400
    emblocks: int = 10
    emdensity: float = 0.5
    repeats: int = 7
    warmup: int = 2


@dataclass
class Row:
    name: str
    params: int
    ms: float                       # median over the rounds
    ratio: float                    # median per-round ratio to the group's reference
    ratio_low: float                # its interquartile range
    ratio_high: float


def _time(candidates: dict[str, Callable[[], None]], repeats: int, warmup: int,
          device: torch.device) -> dict[str, list[float]]:
    """Milliseconds per call, one sample per round; the candidates take turns in a round."""
    def once(fn):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1000

    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(once(fn))
    return samples


def ratio_rows(params: dict[str, int], samples: dict[str, list[float]], reference: str) -> list[Row]:
    """One row per candidate: median ms, and the median and quartiles of its per-round
    ratio to ``reference`` (paired rounds cancel the machine's slow and fast patches)."""
    rows = []
    for name, count in params.items():
        ratios = [a / b for a, b in zip(samples[name], samples[reference])]
        low, _, high = (statistics.quantiles(ratios, n=4, method="inclusive")
                        if len(ratios) > 1 else ratios * 3)
        rows.append(Row(name, count, statistics.median(samples[name]), statistics.median(ratios),
                        low, high))
    return rows


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def bench_lstm(s: BenchSettings, device: torch.device) -> list[Row]:
    """SparseLSTM (each implementation) vs the equal-parameter and the equal-width dense LSTM."""
    T, B, size = s.seq_len, s.batch_size, s.lstm_size
    sparse = {impl: SparseLSTM(size, size, reduce_in=s.reduce, reduce_out=s.reduce, impl=impl.value)
              for impl in LSTMImpl}
    small = round(size * s.reduce)
    modules = {f"SparseLSTM impl={impl.value}" + (" (reference)" if impl is LSTMImpl.SEQUENTIAL else ""): m
               for impl, m in sparse.items()}
    modules[f"nn.LSTM {small}x{small} (equal params)"] = nn.LSTM(small, small)
    modules[f"nn.LSTM {size}x{size} (equal width)"] = nn.LSTM(size, size)
    inputs = {}
    for name, m in modules.items():
        m.to(device).train()
        width = small if name.startswith(f"nn.LSTM {small}x") else size
        inputs[name] = torch.randn(T, B, width, device=device, requires_grad=True)

    def step(m, x):
        def fn():
            out, _ = m(x)
            out.sum().backward()
        return fn

    samples = _time({n: step(m, inputs[n]) for n, m in modules.items()}, s.repeats, s.warmup, device)
    return ratio_rows({n: _params(m) for n, m in modules.items()}, samples,
                 f"nn.LSTM {small}x{small} (equal params)")


def bench_embedding(s: BenchSettings, device: torch.device) -> list[Row]:
    """SparseEmbedding lookup + tied decode vs the dense V x d and the equal-parameter dense."""
    V, d, N = s.vocab_size, s.emsize, s.seq_len * s.batch_size
    sparse = SparseEmbedding(V, d, blocks=s.emblocks, density=s.emdensity).to(device)
    small = max(1, round(sparse.geometry.params / V))
    ids = torch.randint(0, V, (s.seq_len, s.batch_size), device=device)
    grad = torch.randn(N, V, device=device)
    bias = nn.Parameter(torch.zeros(V, device=device))

    def sparse_step():
        emb = sparse(ids)
        sparse.decode(emb.view(N, d), bias).backward(grad)

    def dense_step(weight):
        def fn():
            emb = F.embedding(ids, weight)
            F.linear(emb.view(N, weight.size(1)), weight, bias).backward(grad)
        return fn

    w_full = nn.Parameter(torch.empty(V, d, device=device).uniform_(-0.1, 0.1))
    w_small = nn.Parameter(torch.empty(V, small, device=device).uniform_(-0.1, 0.1))
    names = {f"SparseEmbedding {V}x{d} ({s.emblocks} blocks, density {s.emdensity:g})": sparse_step,
             f"dense {V}x{d}": dense_step(w_full),
             f"dense {V}x{small} (equal params)": dense_step(w_small)}
    params = dict(zip(names, [sparse.geometry.params, V * d, V * small]))
    return ratio_rows(params, _time(names, s.repeats, s.warmup, device), f"dense {V}x{d}")


def check_settings(s: BenchSettings) -> None:
    """Refuse infeasible layer settings before any timing starts."""
    try:
        lstm_geometry(s.lstm_size, s.lstm_size, reduce_in=s.reduce, reduce_out=s.reduce)
    except ValueError as err:
        raise SparseseqError(f"bench: {err}; choose another --lstm-size/--reduce") from None
    try:
        embedding_geometry(s.vocab_size, s.emsize, blocks=s.emblocks, density=s.emdensity)
    except ValueError as err:
        raise SparseseqError(f"bench: {err}; choose other --emblocks/--emdensity") from None
    for name in ("seq_len", "batch_size", "vocab_size", "emsize", "repeats"):
        if getattr(s, name) < 1:
            raise SparseseqError(f"bench: --{name.replace('_', '-')} must be at least 1")


def run_bench(settings: BenchSettings, device: torch.device) -> dict:
    """Both comparisons on ``device``: the record ``bench --json`` prints."""
    check_settings(settings)
    torch.manual_seed(0)
    return {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "settings": asdict(settings),
        "lstm": [asdict(r) for r in bench_lstm(settings, device)],
        "lstm_reference": "equal params",
        "embedding": [asdict(r) for r in bench_embedding(settings, device)],
        "embedding_reference": "dense V x d",
    }

