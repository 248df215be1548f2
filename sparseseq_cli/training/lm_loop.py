"""The language model's training pass and evaluation pass, shared by train-lm, finetune-lm
and overfit (``lm_phases.py`` says what each does between epochs).

One training pass: variable BPTT with the learning rate scaled to the sequence length,
AR/TAR on the last layer's outputs, gradient clipping, an optional parameter average, and
for overfit the accuracy count. Under torchrun each rank trains on its share of the batch
columns with their own hidden state; the returned loss, accuracy and tokens are the whole
batch's (``distributed.py``).
"""
from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from sparseseq_cli.config import LMConfig, Precision
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import chunk_starts, perplexity, stream_nll
from sparseseq_cli.models.language_model import Hidden, LanguageModel
from sparseseq_cli.progress import Progress
from sparseseq_cli.training.averaging import ParameterAverage
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.divergence import NonFiniteWatch
from sparseseq_cli.training.precision import Mixed
from sparseseq_cli.training.tensorboard import EpochLog
from sparseseq_cli.training.state import Clock, LMState, StopRequest


@dataclass
class Session:
    """One phase's moving parts."""
    cfg: LMConfig
    model: LanguageModel
    optimizer: torch.optim.SGD
    progress: Progress
    state: LMState = field(default_factory=LMState)
    average: Optional[ParameterAverage] = None
    seq_rng: random.Random = field(default_factory=random.Random)
    stop: Optional[StopRequest] = None
    clock: Clock = field(default_factory=Clock)
    world: World = field(default_factory=World)
    net: Optional[torch.nn.Module] = None   # what a training step calls: the model, or DDP around it
    amp: Mixed = field(default_factory=lambda: Mixed(Precision.FP32, torch.device("cpu")))
    log: Optional[EpochLog] = None          # where the epoch's metrics go (set when the run is open)

    def lr(self) -> float:
        """The learning rate the optimizer holds between steps (the epoch's, which each step
        scales by seq_len/bptt): what the metrics report."""
        return self.optimizer.param_groups[0]["lr"]


@dataclass
class EpochStats:
    loss: float                      # mean training NLL per token
    accuracy: Optional[float]        # argmax == target before each update (overfit)
    tokens: int
    seconds: float
    cursor: Optional[dict] = None    # set when interrupted: where to continue
    diverged_batch: Optional[int] = None   # set when the loss stopped being finite


# ---- one epoch ------------------------------------------------------------------------------
def _detach(hidden: Hidden) -> Hidden:
    return [(h.detach(), c.detach()) for h, c in hidden]


def train_epoch(s: Session, data: torch.Tensor, epoch: int, cursor: Optional[dict] = None,
                count_correct: bool = False) -> EpochStats:
    """One pass over the training columns ``data`` (rows, B; a rank's share of them under
    torchrun), from ``cursor`` if given; the returned loss, accuracy and tokens are the
    whole batch's."""
    t, model, optimizer, world = s.cfg.train, s.model, s.optimizer, s.world
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    device = data.device
    base_lr = t.lr * t.lr_gamma ** (epoch - 1)
    total = (len(data) - 1) // t.bptt
    if t.max_batches is not None:
        total = min(total, t.max_batches)
    if cursor is None:
        i, batch, tokens, seconds = 0, 0, 0, 0.0
        hidden = model.init_hidden(data.size(1))
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
    else:
        i, batch, tokens, seconds = cursor["i"], cursor["batch"], cursor["tokens"], cursor["seconds"]
        hidden = [(h.to(device), c.to(device)) for h, c in cursor["hidden"]]
        loss_sum, correct = cursor["loss_sum"].to(device), cursor["correct"].to(device)
    interval_loss = torch.zeros((), device=device)
    interval_batches, interval_start, start = 0, time.perf_counter(), time.perf_counter()
    watch = NonFiniteWatch(device, world, start=batch)

    def where() -> dict:
        return {"i": i, "batch": batch, "tokens": tokens, "seconds": seconds + time.perf_counter() - start,
                "hidden": _detach(hidden), "loss_sum": loss_sum, "correct": correct}

    def diverged(bad: int) -> EpochStats:
        return EpochStats(math.nan, None, tokens, seconds + time.perf_counter() - start, diverged_batch=bad)

    with s.progress.bar(f"epoch {epoch}", total) as bar:
        bar.advance(batch)
        while i < len(data) - 2 and (t.max_batches is None or batch < t.max_batches):
            if s.stop is not None and world.stop_now(s.stop.requested, batch):
                return EpochStats(math.nan, None, tokens, seconds + time.perf_counter() - start, where())
            # variable BPTT: mostly bptt, sometimes half, jittered; lr scaled to match
            bptt = t.bptt if s.seq_rng.random() < 0.95 else t.bptt / 2
            seq_len = min(max(5, int(s.seq_rng.gauss(bptt, 5))), t.bptt + t.max_seq_len_delta)
            rows = min(seq_len, len(data) - 1 - i)
            x = data[i:i + rows]                                    # (rows, B)
            y = data[i + 1:i + 1 + rows].reshape(-1)                # (rows*B,)
            for group in optimizer.param_groups:
                group["lr"] = base_lr * seq_len / t.bptt
            with s.amp.autocast():
                out = s.net(x, _detach(hidden))
                raw_loss = F.nll_loss(out.log_probs, y)
                loss = raw_loss
                if t.alpha:   # activation regularization on the dropped last output
                    loss = loss + t.alpha * out.dropped_last.pow(2).mean()
                if t.beta:    # temporal activation regularization on the raw last output
                    loss = loss + t.beta * (out.raw_last[1:] - out.raw_last[:-1]).pow(2).mean()
            hidden = out.hidden
            if count_correct:  # before the update, as the original counted
                correct += (out.log_probs.argmax(dim=-1) == y).sum()
            watch.note(batch, loss)
            optimizer.zero_grad(set_to_none=True)
            s.amp.backward(loss)
            if t.clip > 0:
                s.amp.unscale(optimizer)
                torch.nn.utils.clip_grad_norm_(params, t.clip)
            s.amp.step(optimizer)
            if s.average is not None:
                s.average.update()
            for group in optimizer.param_groups:
                group["lr"] = base_lr
            raw = raw_loss.detach()
            loss_sum += raw * y.numel()
            interval_loss += raw
            tokens += y.numel()
            interval_batches += 1
            batch += 1
            i += seq_len
            bar.advance()
            bad = watch.first_bad(batch)
            if bad is not None:
                return diverged(bad)
            if batch % t.log_interval == 0:
                # the only sync: per interval (ranks' means over equal shares: their mean)
                cur = world.sum(interval_loss).item() / world.size / interval_batches
                ms = (time.perf_counter() - interval_start) * 1000 / interval_batches
                s.progress.status(f"| epoch {epoch:3d} | {batch:5d}/{total:5d} batches | lr {base_lr:02.2f} "
                                  f"| ms/batch {ms:5.2f} | loss {cur:5.2f} | ppl {perplexity(cur):8.2f}")
                if s.log is not None:
                    s.log.interval((epoch - 1) * total + batch, cur)
                interval_loss.zero_()
                interval_batches, interval_start = 0, time.perf_counter()
        bad = watch.first_bad(batch, end=True)
        if bad is not None:
            return diverged(bad)
    loss_total, correct_total, tokens = world.sum(torch.stack(
        [loss_sum.double(), correct.double(), loss_sum.new_tensor(tokens, dtype=torch.float64)])).tolist()
    tokens = int(tokens)
    if tokens == 0:
        raise SparseseqError("the training split gave no batches: use more data or a smaller batch_size")
    accuracy = correct_total / tokens if count_correct else None
    return EpochStats(loss_total / tokens, accuracy, tokens, seconds + time.perf_counter() - start)


def evaluate(model: LanguageModel, data: torch.Tensor, bptt: int, *,
             max_batches: Optional[int] = None, progress: Optional[Progress] = None,
             description: str = "eval", world: World = World()) -> tuple[float, int]:
    """Mean NLL per predicted token over ``data`` (rows, B), in chunks of ``bptt`` rows
    (``models/evaluation.py``, the pass ``score`` shares); under torchrun ``data`` is the
    rank's share of the columns (maybe none) and the losses are summed over the ranks."""
    chunks = len(chunk_starts(data, bptt, max_batches))
    with (progress.bar(description, chunks) if progress else nullcontext()) as bar:
        result = stream_nll(model, data, bptt, max_batches=max_batches, bar=bar)
    total, count = world.sum(torch.stack([result.total, result.total.new_tensor(result.count)])).tolist()
    return total / count, int(count)
