"""``sparseseq doctor``: does this machine compute what the paper's layers should, and how fast.

The record holds the versions that matter (python, torch, CUDA, cuDNN, the GPU, CPU
threads) and a list of checks on one device, each ``ok`` or not with its numbers:

- ``lstm-sequential``, ``lstm-dense``: each SparseLSTM implementation against nn.LSTM
  loaded with its dense weights (forward and gradients);
- ``embedding``: SparseEmbedding's lookup and tied decode against the dense computation;
- ``training``: 30 SGD steps of a small sparse language model lower its loss;
- ``timing``: SparseLSTM sequential and dense against the equal-parameter nn.LSTM, with
  the implementation ``impl=auto`` picks next to the faster one measured. Informative: a
  tiny timing is noisy and small layers do not rank the implementations as large ones do,
  so it fails only when the timing itself cannot run.

A check that raises is a failed check carrying the error, so one broken kernel does not
hide the others' results.
"""
from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from sparseseq_cli.bench import BenchSettings, bench_lstm
from sparseseq_cli.corpora.lm_data import batchify, load_lm_corpus
from sparseseq_cli.corpora.synthetic import BUILTIN_PATH
from sparseseq_cli.equivalence import TOLERANCE, Difference, embedding_difference, lstm_difference
from sparseseq_cli.layers import SparseLSTM
from sparseseq_cli.models.language_model import LanguageModel

# A model that learns drops about 2 nats in these steps (from ln V towards the unigram
# entropy and below); half a nat leaves room for any device's rounding while still failing
# a model whose updates do not reach it.
MIN_LOSS_DROP = 0.5


@dataclass(frozen=True)
class DoctorSettings:
    train_steps: int = 30
    # timing: large enough that the implementations' costs, not Python, dominate, small
    # enough that the whole doctor stays well under a minute on a 2-core CPU
    lstm_size: int = 512
    seq_len: int = 35
    batch_size: int = 20
    repeats: int = 5
    warmup: int = 1


DEFAULT_SETTINGS = DoctorSettings()


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware: what a report of a problem (or of a timing) needs."""
    gpu = gpu_memory = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu, gpu_memory = props.name, round(props.total_memory / 2 ** 30, 1)
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "device": str(device), "gpu": gpu, "gpu_memory_gib": gpu_memory,
            "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            # other work on the cores slows every timing (and the doctor) several times over
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "platform": platform.platform()}


def _equivalence(diff: Difference, what: str) -> dict[str, Any]:
    return {"ok": diff.ok, "max_abs_diff": diff.max_abs_diff, "tolerance": TOLERANCE,
            "worst_ratio": diff.worst_ratio, "tensors": diff.compared,
            "detail": f"{what}: max abs diff {diff.max_abs_diff:.1e} over {diff.compared} tensors "
                      f"(worst {diff.worst_ratio:.1%} of the tolerance)"}


def check_lstm(impl: str, device: torch.device) -> dict[str, Any]:
    return _equivalence(lstm_difference(impl, device),
                        "vs nn.LSTM with dense_weights(), forward+grads")


def check_embedding(device: torch.device) -> dict[str, Any]:
    return _equivalence(embedding_difference(device),
                        "lookup + decode vs the dense matrix, forward+grads")


def check_training(device: torch.device, steps: int) -> dict[str, Any]:
    """``steps`` steps of the recipe's optimizer (SGD, lr 20, clip 0.25) on a small sparse LM
    (sparse embedding, sparse_hidden LSTMs, no dropout) over the built-in synthetic corpus;
    the loss of one fixed batch in eval mode before (first) and after (last)."""
    torch.manual_seed(0)
    corpus = load_lm_corpus(BUILTIN_PATH, splits=("train",))
    bptt, columns = 20, 16
    data = batchify(corpus.splits["train"], columns).to(device)
    if (steps + 1) * bptt >= len(data):
        raise ValueError(f"{steps} steps need more than the corpus's {len(data)} rows")
    V = len(corpus.vocab)
    model = LanguageModel(V, emsize=32, nhid=64, nlayers=2, dropout=0, dropouth=0, dropouti=0,
                          dropoute=0, wdrop=0, emblocks=4, emdensity=0.5,
                          sparse_mode="sparse_hidden", sparse_fract=0.5).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=20)

    def loss_on(i: int, hidden):
        out = model(data[i:i + bptt], hidden)
        return F.nll_loss(out.log_probs, data[i + 1:i + 1 + bptt].reshape(-1)), out.hidden

    def fixed_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(loss_on(0, model.init_hidden(columns))[0])

    first = fixed_loss()
    model.train()
    hidden, losses = model.init_hidden(columns), []
    for step in range(steps):
        hidden = [(h.detach(), c.detach()) for h, c in hidden]
        loss, hidden = loss_on(step * bptt, hidden)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        losses.append(round(loss.item(), 4))
    last = fixed_loss()
    ok = math.isfinite(last) and first - last >= MIN_LOSS_DROP
    return {"ok": ok, "first_loss": first, "last_loss": last, "steps": steps, "vocab_size": V,
            "train_losses": losses,
            "detail": f"loss of a fixed batch {first:.3f} -> {last:.3f} after {steps} SGD steps "
                      f"(ln V = {math.log(V):.2f}; a drop of {MIN_LOSS_DROP} needed)"}


def check_timing(device: torch.device, s: DoctorSettings) -> dict[str, Any]:
    """bench's SparseLSTM comparison at small sizes; ``auto`` resolved by the layer itself."""
    bench = BenchSettings(lstm_size=s.lstm_size, seq_len=s.seq_len, batch_size=s.batch_size,
                          repeats=s.repeats, warmup=s.warmup)
    rows = bench_lstm(bench, device)

    def row(start: str, end: str = ""):
        return next(r for r in rows if r.name.startswith(start) and r.name.endswith(end))

    ms = {impl: row(f"SparseLSTM impl={impl}").ms for impl in ("sequential", "dense")}
    equal = row("nn.LSTM", "(equal params)")
    layer = SparseLSTM(s.lstm_size, s.lstm_size, reduce_in=bench.reduce, reduce_out=bench.reduce)
    # the rule forward applies to its input (layers/sparse_lstm.py), asked with one on the device
    auto = layer._resolve_impl(torch.empty(0, device=device)).value
    faster = min(("sequential", "dense"), key=lambda impl: ms[impl])
    note = ("" if auto == faster else
            "; auto's pick was slower here: informative only, small layers and a short timing "
            "need not rank the implementations as the model's sizes do (`sparseseq bench`)")
    return {"ok": True, "auto": auto, "faster": faster,
            "ms": {"sequential": ms["sequential"], "dense": ms["dense"], "equal_params": equal.ms},
            "settings": {key: getattr(bench, key) for key in
                         ("lstm_size", "reduce", "seq_len", "batch_size", "repeats", "warmup")},
            "rows": [asdict(row) for row in rows],
            "detail": f"{s.lstm_size}x{s.lstm_size} T={s.seq_len} B={s.batch_size}: sequential "
                      f"{ms['sequential']:.1f} ms, dense {ms['dense']:.1f} ms, {equal.name} "
                      f"{equal.ms:.1f} ms; auto picks {auto}, faster measured: {faster}{note}"}


def _run_check(name: str, fn: Callable[[], dict[str, Any]], device: torch.device) -> dict[str, Any]:
    try:
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)   # an asynchronous kernel error belongs to this check
    except Exception as err:  # noqa: BLE001  a diagnosis reports every failure, then goes on
        message = " ".join(str(err).split()) or "no message"
        return {"name": name, "ok": False, "error": f"{type(err).__name__}: {message}",
                "detail": f"raised {type(err).__name__}: {message}"}
    return {"name": name, **result}


def run_doctor(device: torch.device, settings: DoctorSettings | None = None) -> dict[str, Any]:
    """The environment and every check on ``device``: the record ``doctor --json`` prints."""
    s = settings or DEFAULT_SETTINGS
    checks = [
        ("lstm-sequential", lambda: check_lstm("sequential", device)),
        ("lstm-dense", lambda: check_lstm("dense", device)),
        ("embedding", lambda: check_embedding(device)),
        ("training", lambda: check_training(device, s.train_steps)),
        ("timing", lambda: check_timing(device, s)),
    ]
    results = [_run_check(name, fn, device) for name, fn in checks]
    return {"env": environment(device), "ok": all(c["ok"] for c in results), "checks": results}
