"""The tagger's training pass and its accuracy count (train-pos, ``tagging.py``).

Under torchrun every rank takes every size-th sentence of each training batch (the batch
is sorted by length, so the shares get about equal tokens), weighs its mean loss by its
share of the batch's tokens, and the gradients are summed over the ranks: one step equals
the single-process step on the whole batch. The ranks evaluate disjoint sets of batches
and add up the counts, which gives exactly the single-process accuracies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from sparseseq_cli.config import OptimizerName, POSConfig, Precision
from sparseseq_cli.corpora.tag_batches import Batch
from sparseseq_cli.models.evaluation import Accuracy, batch_hits
from sparseseq_cli.models.tagger import Tagger, real_tokens
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.divergence import NonFiniteWatch
from sparseseq_cli.training.precision import Mixed
from sparseseq_cli.training.state import StopRequest


def make_optimizer(cfg: POSConfig, model: Tagger) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer is OptimizerName.SGD:
        return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.wdecay)
    try:   # one fused kernel instead of ~10 ops per tensor: a third of the step time on CPU
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.wdecay, fused=True)
    except RuntimeError:   # torch < 2.4 fuses on CUDA only
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.wdecay)


# ---- one pass ------------------------------------------------------------------------------
def _share(batch: Batch, world: World) -> Optional[Batch]:
    """This rank's sentences of ``batch``: every size-th column from its rank on, trimmed to
    the longest of them; None when the batch has fewer sentences than there are ranks and
    this rank gets none."""
    if not world.distributed:
        return batch
    columns = torch.arange(world.rank, batch.lengths.numel(), world.size)
    if not columns.numel():
        return None
    lengths = batch.lengths[columns]
    steps = int(lengths[0])
    return Batch(batch.ids[:steps, columns], batch.tags[:steps, columns], lengths)


@dataclass(frozen=True)
class PassResult:
    loss: float                           # mean over batches of the batch's mean token cross-entropy
    stopped: bool = False                 # Ctrl-C before the pass ended
    diverged_batch: Optional[int] = None  # the first batch whose loss was not finite


def train_epoch(model: Tagger, optimizer: torch.optim.Optimizer, batches: list[Batch],
                device: torch.device, bar=None, stop: Optional[StopRequest] = None,
                world: World = World(), amp: Optional[Mixed] = None) -> PassResult:
    """One pass over ``batches``; the loss is the original's train loss."""
    model.train()
    params = list(model.parameters())
    total = torch.zeros((), device=device)
    watch = NonFiniteWatch(device, world)
    amp = amp or Mixed(Precision.FP32, device)
    for step, batch in enumerate(batches):
        if stop is not None and world.stop_now(stop.requested, step):
            return PassResult(math.nan, stopped=True)
        share = _share(batch, world)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        if share is not None:
            share = share.to(device)
            with amp.autocast():
                loss = F.cross_entropy(model(share.ids, share.lengths), real_tokens(share.tags, share.lengths))
            # the ranks' parts of the batch's mean (times 1.0 in a single process)
            loss = loss * (share.tokens / batch.tokens)
            amp.backward(loss)
            total += loss.detach()
        watch.note(step, loss)
        world.sum_gradients(params)
        amp.step(optimizer)
        if bar is not None:
            bar.advance()
        bad = watch.first_bad(step + 1, end=step + 1 == len(batches))
        if bad is not None:
            return PassResult(math.nan, diverged_batch=bad)
    return PassResult(world.sum(total).item() / max(len(batches), 1))


def evaluate(model: Tagger, batches: list[Batch], device: torch.device, none_id: Optional[int],
             world: World = World()) -> Accuracy:
    """Token accuracy over all tokens, and over tokens whose gold tag is not ``-NONE-``
    (``models/evaluation.py``, the counts ``tag`` shares; under torchrun each rank counts
    every size-th batch, and the counts are added)."""
    model.eval()
    counts = torch.zeros(4, dtype=torch.long, device=device)
    for batch in batches[world.rank::world.size]:
        batch = batch.to(device)
        counts += batch_hits(model, batch.ids, batch.tags, batch.lengths, none_id)[1]
    return Accuracy(*world.sum(counts).tolist())
