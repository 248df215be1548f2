"""Language-model training (SPEC 3): ``train-lm``, ``finetune-lm``, ``overfit``, ``eval-lm``.

The three training phases share one epoch function, :func:`train_epoch` (variable BPTT
with learning-rate scaling, AR/TAR, clipping, optional parameter averaging and, for
``overfit``, the accuracy count), and differ only in what happens between epochs:

- ``train-lm``: validate (the averaged weights once NT-ASGD has switched), keep the best,
  switch to averaging when validation stops improving for ``nonmono`` epochs, stop after
  ``asgd_patience`` averaged epochs in a row that were worse than the one before;
- ``finetune-lm``: averaging from the start on the trained model, stop when validation
  is no better than ``nonmono`` epochs ago (not before ``finetune_min_epochs``);
- ``overfit``: no validation; learning rate times ``lr_gamma`` per epoch, stop when the
  training accuracy exceeds 1 - ``memorize_eps``.

Under torchrun each rank trains on its share of the batch columns with their own hidden
state (``training/distributed.py``): DDP averages the gradients, validation is summed over
the ranks' shares of the columns, every decision (NT-ASGD's switch, stopping, the best
model) follows from those shared numbers on every rank alike, and rank 0 writes the run.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
import torch.nn.functional as F

from sparseseq_cli.config import LMConfig, config_to_dict, load_config
from sparseseq_cli.corpora.lm_data import SPLITS, LMCorpus, batchify, load_lm_corpus, unigram_perplexity
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import Hidden, LanguageModel
from sparseseq_cli.training.averaging import ParameterAverage
from sparseseq_cli.training.distributed import World, data_parallel
from sparseseq_cli.training.progress import Progress
from sparseseq_cli.training.runs import (CONFIG, FINETUNE, TRAIN, VOCAB, RunDir, RunFiles,
                                         StopRequest, TrainingInterrupted, config_of, resolve_run,
                                         results_record)

RULE = "-" * 89


def build_model(cfg: LMConfig, vocab_size: int) -> LanguageModel:
    return LanguageModel(vocab_size, **dataclasses.asdict(cfg.model))


# ---- the loop's state ------------------------------------------------------------------------
@dataclass
class TrainState:
    """Between-epoch bookkeeping; saved whole (with model, optimizer, averaging and RNGs)."""
    epoch: int = 0                       # last completed epoch
    history: list[float] = field(default_factory=list)  # validation losses before averaging
    best_val_loss: float = math.inf      # (train loss for overfit)
    best_epoch: int = 0
    asgd_prev_loss: float = math.inf
    asgd_worse: int = 0                  # averaged epochs in a row worse than the previous
    stopped: bool = False                # a stop rule fired: only the final test is left
    memorized_epoch: Optional[int] = None
    last: dict[str, float] = field(default_factory=dict)  # the last epoch's metrics
    train_tokens: int = 0
    train_seconds: float = 0.0
    elapsed_s: float = 0.0               # wall time of the earlier processes of this phase


@dataclass
class Session:
    """One phase's moving parts."""
    cfg: LMConfig
    model: LanguageModel
    optimizer: torch.optim.SGD
    progress: Progress
    state: TrainState = field(default_factory=TrainState)
    average: Optional[ParameterAverage] = None
    seq_rng: random.Random = field(default_factory=random.Random)
    stop: Optional[StopRequest] = None
    started: float = field(default_factory=time.time)
    world: World = field(default_factory=World)
    net: Optional[torch.nn.Module] = None   # what a training step calls: the model, or DDP around it

    def elapsed(self) -> float:
        return self.state.elapsed_s + time.time() - self.started

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
    interval_batches, interval_start, start = 0, time.time(), time.time()

    def where() -> dict:
        return {"i": i, "batch": batch, "tokens": tokens, "seconds": seconds + time.time() - start,
                "hidden": _detach(hidden), "loss_sum": loss_sum, "correct": correct}

    with s.progress.bar(f"epoch {epoch}", total) as bar:
        bar.advance(batch)
        while i < len(data) - 2 and (t.max_batches is None or batch < t.max_batches):
            if s.stop is not None and world.stop_now(s.stop.requested, batch):
                return EpochStats(math.nan, None, tokens, seconds + time.time() - start, where())
            # variable BPTT: mostly bptt, sometimes half, jittered; lr scaled to match
            bptt = t.bptt if s.seq_rng.random() < 0.95 else t.bptt / 2
            seq_len = min(max(5, int(s.seq_rng.gauss(bptt, 5))), t.bptt + t.max_seq_len_delta)
            rows = min(seq_len, len(data) - 1 - i)
            x = data[i:i + rows]                                    # (rows, B)
            y = data[i + 1:i + 1 + rows].reshape(-1)                # (rows*B,)
            for group in optimizer.param_groups:
                group["lr"] = base_lr * seq_len / t.bptt
            out = s.net(x, _detach(hidden))
            hidden = out.hidden
            raw_loss = F.nll_loss(out.log_probs, y)
            loss = raw_loss
            if t.alpha:   # activation regularization on the dropped last output
                loss = loss + t.alpha * out.dropped_last.pow(2).mean()
            if t.beta:    # temporal activation regularization on the raw last output
                loss = loss + t.beta * (out.raw_last[1:] - out.raw_last[:-1]).pow(2).mean()
            if count_correct:  # before the update, as the original counted
                correct += (out.log_probs.argmax(dim=-1) == y).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, t.clip)
            optimizer.step()
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
            if batch % t.log_interval == 0:
                # the only sync: per interval (ranks' means over equal shares: their mean)
                cur = world.sum(interval_loss).item() / world.size / interval_batches
                ms = (time.time() - interval_start) * 1000 / interval_batches
                s.progress.status(f"| epoch {epoch:3d} | {batch:5d}/{total:5d} batches | lr {base_lr:02.2f} "
                                  f"| ms/batch {ms:5.2f} | loss {cur:5.2f} | ppl {math.exp(min(cur, 50)):8.2f}")
                interval_loss.zero_()
                interval_batches, interval_start = 0, time.time()
    loss_total, correct_total, tokens = world.sum(torch.stack(
        [loss_sum.double(), correct.double(), loss_sum.new_tensor(tokens, dtype=torch.float64)])).tolist()
    tokens = int(tokens)
    if tokens == 0:
        raise SparseseqError("the training split gave no batches: use more data or a smaller batch_size")
    accuracy = correct_total / tokens if count_correct else None
    return EpochStats(loss_total / tokens, accuracy, tokens, seconds + time.time() - start)


@torch.no_grad()
def evaluate(model: LanguageModel, data: torch.Tensor, bptt: int, *,
             max_batches: Optional[int] = None, progress: Optional[Progress] = None,
             description: str = "eval", world: World = World()) -> tuple[float, int]:
    """Mean NLL per predicted token over ``data`` (rows, B), in chunks of ``bptt`` rows;
    under torchrun ``data`` is the rank's share of the columns (maybe none) and the losses
    are summed over the ranks."""
    model.eval()
    hidden = model.init_hidden(data.size(1))
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    count = 0
    starts = range(0, len(data) - 1, bptt) if data.size(1) else range(0)
    if max_batches is not None:
        starts = starts[:max_batches]
    with (progress.bar(description, len(starts)) if progress else nullcontext()) as bar:
        for i in starts:
            rows = min(bptt, len(data) - 1 - i)
            out = model(data[i:i + rows], hidden)
            hidden = out.hidden
            y = data[i + 1:i + 1 + rows].reshape(-1)
            total += F.nll_loss(out.log_probs, y, reduction="sum")
            count += y.numel()
            if bar is not None:
                bar.advance()
    total, count = world.sum(torch.stack([total, total.new_tensor(count)])).tolist()
    return total / count, int(count)


# ---- checkpoints ------------------------------------------------------------------------------
def _model_record(s: Session, vocab: list[str], kind: str) -> dict[str, Any]:
    return {"kind": kind, "config": config_to_dict(s.cfg), "vocab": vocab,
            "model": {k: v.detach().cpu() for k, v in s.model.state_dict().items()}}


def _validate_epoch(run: RunDir, s: Session, vocab: list[str], kind: str, valid_data: torch.Tensor,
                    epoch: int, stats: EpochStats, best: str) -> float:
    """train-lm and finetune-lm: validate (the averaged weights once averaging runs), log the
    original's end-of-epoch lines, save ``best`` when validation improved."""
    t, st, progress = s.cfg.train, s.state, s.progress
    averaged = s.average is not None
    with s.average.swapped_in() if averaged else nullcontext():
        val_loss, _ = evaluate(s.model, valid_data, t.bptt, max_batches=t.max_batches,
                               progress=progress, description="valid", world=s.world)
        progress.line(RULE)
        progress.line(_epoch_line(epoch, stats.seconds, val_loss))
        progress.line(RULE)
        if val_loss < st.best_val_loss:
            run.save(best, {**_model_record(s, vocab, kind), "epoch": epoch, "val_loss": val_loss})
            st.best_val_loss, st.best_epoch = val_loss, epoch
            progress.line("Saving Averaged!" if averaged else "Saving Normal!")
    return val_loss


def _end_validated_epoch(run: RunDir, s: Session, vocab: list[str], kind: str, epoch: int,
                         stats: EpochStats, val_loss: float, averaged: bool) -> None:
    """train-lm and finetune-lm after an epoch's validation: metrics line, last checkpoint."""
    s.state.epoch = epoch
    s.state.last = {"train_loss": stats.loss, "valid_loss": val_loss}
    run.append_metrics({"epoch": epoch, "elapsed_s": round(s.elapsed(), 3),
                        "train_loss": stats.loss, "valid_loss": val_loss,
                        "valid_ppl": _ppl(val_loss), "lr": s.lr(), "asgd": averaged})
    _save_last(run, s, vocab, kind)


def _finish_validated(run: RunDir, s: Session, kind: str, device: torch.device,
                      test_data: torch.Tensor, best: str) -> dict[str, Any]:
    """train-lm and finetune-lm at the end: test the best model, write the results."""
    test_loss = _test(run, s, test_data, best)
    st = s.state
    return _results(kind, s, run, device, {
        "valid_loss": st.best_val_loss, "valid_ppl": _ppl(st.best_val_loss),
        "test_loss": test_loss, "test_ppl": _ppl(test_loss), "best_epoch": st.best_epoch})


def _save_last(run: RunDir, s: Session, vocab: list[str], kind: str,
               cursor: Optional[dict] = None) -> None:
    """Every rank takes part (the cursor and generators are gathered); rank 0 writes."""
    cursor = _whole_batch_cursor(s.world, cursor)
    rngs = s.world.rng_record()
    if not run.writer:
        return
    state = dataclasses.replace(s.state, elapsed_s=s.elapsed())
    run.save(run.files.last, {
        **_model_record(s, vocab, kind),
        "optimizer": s.optimizer.state_dict(),
        "averaging": None if s.average is None else s.average.state_dict(),
        "state": dataclasses.asdict(state), "seq_rng": s.seq_rng.getstate(),
        **rngs, "cursor": cursor})


def _whole_batch_cursor(world: World, cursor: Optional[dict]) -> Optional[dict]:
    """The ranks' cursors as one process's: hidden states side by side in column order,
    counts summed, so any number of ranks (or one process) can resume from it; each rank's
    own counts are kept in ``ranks`` so that as many ranks resume exactly."""
    if cursor is None or not world.distributed:
        return cursor
    counts = ("tokens", "loss_sum", "correct")
    ranks = world.gather({"hidden": [(h.cpu(), c.cpu()) for h, c in cursor["hidden"]],
                          "tokens": cursor["tokens"], "loss_sum": cursor["loss_sum"].cpu(),
                          "correct": cursor["correct"].cpu()})
    hidden = [tuple(torch.cat([r["hidden"][layer][part] for r in ranks], dim=1) for part in (0, 1))
              for layer in range(len(cursor["hidden"]))]
    return {**cursor, "hidden": hidden, **{k: sum(r[k] for r in ranks) for k in counts},
            "ranks": [{k: r[k] for k in counts} for r in ranks]}


def _rank_cursor(world: World, cursor: Optional[dict]) -> Optional[dict]:
    """This rank's part of a saved cursor: its columns' hidden state, and its own counts
    (rank 0 takes the sums when the checkpoint has another number of ranks)."""
    if cursor is None or not world.distributed:
        return cursor
    ranks = cursor.get("ranks")
    if ranks is not None and len(ranks) == world.size:
        own = ranks[world.rank]
    elif world.is_main:
        own = cursor
    else:
        own = {"tokens": 0, "loss_sum": torch.zeros_like(cursor["loss_sum"]),
               "correct": torch.zeros_like(cursor["correct"])}
    return {**cursor, **own,
            "hidden": [(world.shard_columns(h), world.shard_columns(c)) for h, c in cursor["hidden"]]}


def _restore(run: RunDir, s: Session) -> Optional[dict]:
    """Load the phase's last checkpoint into the session; returns a mid-epoch cursor if any."""
    ckpt = s.world.on_main(lambda: run.load(run.files.last))
    try:
        s.model.load_state_dict(ckpt["model"])
        s.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt["averaging"] is not None:
            s.average = ParameterAverage(s.model.parameters())
            s.average.load_state_dict(ckpt["averaging"])
        s.state = TrainState(**ckpt["state"])
        version, internal, gauss = ckpt["seq_rng"]
        s.seq_rng.setstate((version, tuple(internal), gauss))
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise SparseseqError(f"checkpoint {run.path / run.files.last} does not fit this run "
                             f"({err.__class__.__name__}): start over with --force") from None
    s.world.restore_rng(ckpt, s.cfg.train.seed)
    s.started = time.time()
    run.trim_metrics(s.state.epoch)
    return _rank_cursor(s.world, ckpt["cursor"])


# ---- shared set-up ------------------------------------------------------------------------------
def _same_config(saved: LMConfig, given: LMConfig, path: Path) -> None:
    a, b = config_to_dict(saved), config_to_dict(given)
    for section in ("data", "model", "train"):
        for key, value in a[section].items():
            if b[section][key] != value:
                raise SparseseqError(
                    f"--resume continues {path} with its saved config, but {section}.{key} differs "
                    f"(saved {value!r}, given {b[section][key]!r}): drop the change, or --force to start over")


def _open_phase(cfg: LMConfig, path: Path, resume: bool, force: bool, world: World) -> RunDir:
    """Rank 0 applies the start rules and writes the config; the other ranks get a copy of
    the run that leaves the writing to it."""
    world.check_columns(cfg.train.batch_size)   # before the run folder is made

    def open_run() -> RunDir:
        run = RunDir.open(path, resume=resume, force=force)
        if run.resuming:
            _same_config(run.read_config(), cfg, path)
        else:
            run.write_config(cfg)
        return run

    return world.open_run(open_run)


def _read_corpus(cfg: LMConfig, splits: tuple[str, ...]) -> tuple[LMCorpus, dict[str, torch.Tensor]]:
    """The corpus and its batch columns, read before the run folder is touched, so that bad
    data (or a batch size too large for it) leaves nothing behind."""
    corpus = load_lm_corpus(cfg.data.path, cfg.data.vocab_order, corpus_seed=cfg.data.corpus_seed,
                            splits=splits)
    t = cfg.train
    sizes = {"train": t.batch_size, "valid": t.eval_batch_size, "test": t.test_batch_size}
    return corpus, {split: batchify(corpus.splits[split], sizes[split]) for split in splits}


def _keep_vocabulary(cfg: LMConfig, run: RunDir, corpus: LMCorpus, world: World) -> None:
    """vocab.txt into the run; resuming, the data must give the vocabulary the run began with."""
    def check_vocabulary() -> None:
        if run.resuming and run.has(VOCAB) and \
                Vocabulary.load(run.path / VOCAB).words != corpus.vocab.words:
            raise SparseseqError(f"the data at {cfg.data.path} gives another vocabulary than "
                                 f"{run.path / VOCAB}: resume with the data the run started with, "
                                 f"or --force to start over")

    world.on_main(check_vocabulary)
    run.write_vocab(corpus.vocab.words)


def _describe(s: Session, corpus: LMCorpus, device: torch.device) -> None:
    p = s.progress
    sizes = ", ".join(f"{k} {v.numel():,}" for k, v in corpus.splits.items())
    p.line(f"corpus {corpus.source}: vocabulary {len(corpus.vocab):,} ({s.cfg.data.vocab_order.value}), "
           f"tokens {sizes}")
    baselines = ", ".join(f"{k} {unigram_perplexity(corpus.splits['train'], v, len(corpus.vocab)):.1f}"
                          for k, v in corpus.splits.items() if k != "train")
    if baselines:
        p.line(f"unigram perplexity (the baseline to beat): {baselines}")
    counts = s.model.param_counts()
    p.line(f"params total {counts['total']:,} | embedding {counts['embedding']:,} of "
           f"{counts['embedding_dense']:,} | recurrent {counts['recurrent']:,} | device {device}")
    for l, rnn in enumerate(s.model.rnns):
        g = rnn.geometry
        p.line(f"  LSTM layer {l}: {g.input_size} -> {g.hidden_size}, k={g.k}, "
               f"input density {g.density:.4f}, params {g.params:,}")
    w, columns = s.world, s.cfg.train.batch_size
    if w.distributed:
        p.line(f"data parallel: {w.size} processes ({w.backend}), {columns // w.size} of the "
               f"{columns} batch columns each")


def _new_session(cfg: LMConfig, model: LanguageModel, progress: Progress, world: World) -> Session:
    """The session of a freshly built ``model``; under torchrun DDP wraps it (all ranks then
    hold rank 0's weights) and each rank gets its own dropout stream."""
    t = cfg.train
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.wdecay)
    world.seed_dropout(t.seed)
    return Session(cfg, model, optimizer, progress, seq_rng=random.Random(t.seed), world=world,
                   net=world.wrap(model))


def _start_new_model(cfg: LMConfig, path: Path, splits: tuple[str, ...], *, device: torch.device,
                     resume: bool, force: bool, quiet: bool, stream, world: World
                     ) -> tuple[RunDir, Session, list[str], dict[str, torch.Tensor], Optional[dict]]:
    """The start of train-lm and overfit: the corpus read before the run folder is touched,
    the run opened with its vocabulary, and a session on a freshly built, seeded model,
    restored from the last checkpoint when resuming. Returns the run, the session, the
    vocabulary, the batch columns and the mid-epoch cursor (None: start at an epoch)."""
    corpus, columns = _read_corpus(cfg, splits)
    run = _open_phase(cfg, path, resume, force, world)
    progress = Progress(quiet=quiet or not world.is_main, log=run.log, stream=stream)
    torch.manual_seed(cfg.train.seed)
    _keep_vocabulary(cfg, run, corpus, world)
    s = _new_session(cfg, build_model(cfg, len(corpus.vocab.words)).to(device), progress, world)
    cursor = None
    if run.resuming and world.on_main(lambda: run.has(TRAIN.last)):
        cursor = _restore(run, s)
        progress.line(f"resuming {run.path} after epoch {s.state.epoch}"
                      + (" (mid-epoch)" if cursor else ""))
    else:
        _describe(s, corpus, device)
    return run, s, corpus.vocab.words, columns, cursor


def _epoch_or_interrupt(run: RunDir, s: Session, vocab: list[str], kind: str, data: torch.Tensor,
                        epoch: int, cursor: Optional[dict], count_correct: bool = False) -> EpochStats:
    stats = train_epoch(s, data, epoch, cursor, count_correct)
    if stats.cursor is not None:
        _save_last(run, s, vocab, kind, stats.cursor)
        s.progress.line(RULE)
        s.progress.line(f"Exiting from training early (Ctrl-C) in epoch {epoch}")
        raise TrainingInterrupted(f"interrupted: saved a resumable checkpoint in {run.path}; "
                                  f"continue with --resume")
    s.state.train_tokens += stats.tokens
    s.state.train_seconds += stats.seconds
    return stats


def _test(run: RunDir, s: Session, test_data: torch.Tensor, name: str) -> float:
    """The saved best model's test loss; under torchrun rank 0 computes it alone (the test
    batch is usually a single column) and tells the others."""
    def test() -> float:
        if not run.has(name):
            raise SparseseqError(f"no model was saved in {run.path}: the validation loss was never "
                                 f"finite (diverged?); lower train.lr and start over with --force")
        s.model.load_state_dict(run.load(name)["model"])
        t = s.cfg.train
        test_loss, _ = evaluate(s.model, test_data, t.bptt, max_batches=t.max_batches,
                                progress=s.progress, description="test")
        s.progress.line("=" * 89)
        s.progress.line(f"| End of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
        s.progress.line("=" * 89)
        return test_loss

    return s.world.on_main(test)


def _results(kind: str, s: Session, run: RunDir, device: torch.device,
             metrics: dict[str, Any]) -> dict[str, Any]:
    st = s.state
    record = results_record(
        task=kind, cfg=s.cfg, params=s.model.param_counts(), metrics=metrics, epochs=st.epoch,
        wall_time_s=s.elapsed(),
        tokens_per_s=st.train_tokens / st.train_seconds if st.train_seconds > 0 else None,
        device=device)
    run.write_results(record)
    return record


def _before_last(history: list[float], n: int) -> list[float]:
    """``history[:-n]``, also for n = 0 (where ``[:-0]`` would be empty)."""
    return history[:len(history) - n]


def _ppl(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


def _epoch_line(epoch: int, seconds: float, val_loss: float) -> str:
    return (f"| end of epoch {epoch:3d} | time: {seconds:5.2f}s | valid loss {val_loss:5.2f} | "
            f"valid ppl {_ppl(val_loss):8.2f}")


# ---- train-lm ------------------------------------------------------------------------------------
def train_lm(cfg: LMConfig, path: Path, *, device: torch.device, resume: bool = False,
             force: bool = False, quiet: bool = False, stream=None, world: World = World()) -> dict[str, Any]:
    """AWD-LSTM training with NT-ASGD; returns the results.json record. Under torchrun
    ``world`` is this rank's place (see :func:`data_parallel`)."""
    kind = "train-lm"
    run, s, vocab, columns, cursor = _start_new_model(
        cfg, path, ("train", "valid", "test"), device=device, resume=resume, force=force, quiet=quiet,
        stream=stream, world=world)
    progress, t = s.progress, cfg.train
    train_data = world.shard_columns(columns["train"]).to(device)
    valid_data = world.split_columns(columns["valid"]).to(device)
    test_data = columns["test"].to(device)
    st = s.state
    with StopRequest() as s.stop:
        while not st.stopped and st.epoch < t.epochs:
            epoch = st.epoch + 1
            stats = _epoch_or_interrupt(run, s, vocab, kind, train_data, epoch, cursor)
            cursor = None
            averaged = s.average is not None
            val_loss = _validate_epoch(run, s, vocab, kind, valid_data, epoch, stats, TRAIN.best)
            if averaged:
                st.asgd_worse = 0 if val_loss <= st.asgd_prev_loss else st.asgd_worse + 1
                st.asgd_prev_loss = val_loss
                if st.asgd_worse >= t.asgd_patience:
                    progress.line(f"breaking out of ASGD loop: validation worse for {t.asgd_patience} "
                                  f"epochs in a row")
                    st.stopped = True
            else:
                if len(st.history) > t.nonmono and val_loss > min(_before_last(st.history, t.nonmono)):
                    progress.line("Switching to ASGD")
                    s.average = ParameterAverage(s.model.parameters())
                st.history.append(val_loss)
            _end_validated_epoch(run, s, vocab, kind, epoch, stats, val_loss, averaged)
    return _finish_validated(run, s, kind, device, test_data, TRAIN.best)


# ---- finetune-lm ---------------------------------------------------------------------------------
def finetune_lm(path: Path, *, device: torch.device, overrides: Iterable[str] = (),
                flags: Optional[Mapping[str, Any]] = None, resume: bool = False, force: bool = False,
                quiet: bool = False, stream=None, world: World = World()) -> dict[str, Any]:
    """Averaged SGD from the best trained model, into the ``*_finetune*`` files."""
    kind = "finetune-lm"
    path = Path(path)

    def trained_model() -> tuple[dict[str, Any], LMConfig]:
        trained = RunDir(path, TRAIN)
        if not trained.finished():
            raise SparseseqError(f"{path} holds no finished train-lm run (no results.json): train it "
                                 f"first, or --resume its training")
        best = trained.load(TRAIN.best)
        saved = config_of(best, str(path / TRAIN.best))
        cfg = load_config(config_file=path / CONFIG, overrides=overrides, flags=flags, task="lm")
        if config_to_dict(cfg)["model"] != config_to_dict(saved)["model"] or cfg.data != saved.data:
            raise SparseseqError("finetune-lm keeps the trained model and data: change only train.* keys")
        return best, cfg

    best, cfg = world.on_main(trained_model)
    world.check_columns(cfg.train.batch_size)
    run = world.open_run(lambda: RunDir.open(path, resume=resume, force=force, files=FINETUNE))
    progress = Progress(quiet=quiet or not world.is_main, log=run.log, stream=stream)
    t = cfg.train
    torch.manual_seed(t.seed)
    vocab = list(best["vocab"])
    corpus = load_lm_corpus(cfg.data.path, vocab=Vocabulary(vocab), corpus_seed=cfg.data.corpus_seed)
    model = build_model(cfg, len(vocab))
    model.load_state_dict(best["model"])
    s = _new_session(cfg, model.to(device), progress, world)
    train_data = world.shard_columns(batchify(corpus.splits["train"], t.batch_size)).to(device)
    valid_data = world.split_columns(batchify(corpus.splits["valid"], t.eval_batch_size)).to(device)
    test_data = batchify(corpus.splits["test"], t.test_batch_size).to(device)
    cursor = None
    if run.resuming and world.on_main(lambda: run.has(FINETUNE.last)):
        cursor = _restore(run, s)
        progress.line(f"resuming finetuning of {path} after epoch {s.state.epoch}")
    else:
        progress.line(f"finetuning {path / TRAIN.best} (epoch {best['epoch']}) into {FINETUNE.best}")
        s.state.best_val_loss, _ = evaluate(s.model, valid_data, t.bptt, max_batches=t.max_batches,
                                            progress=progress, description="valid", world=world)
        progress.line(f"| start | valid loss {s.state.best_val_loss:5.2f} | "
                      f"valid ppl {_ppl(s.state.best_val_loss):8.2f}")
        run.save(FINETUNE.best, {**_model_record(s, vocab, kind), "epoch": 0,
                                 "val_loss": s.state.best_val_loss})
        s.average = ParameterAverage(s.model.parameters())
    st = s.state
    with StopRequest() as s.stop:
        while not st.stopped and st.epoch < t.epochs:
            epoch = st.epoch + 1
            stats = _epoch_or_interrupt(run, s, vocab, kind, train_data, epoch, cursor)
            cursor = None
            val_loss = _validate_epoch(run, s, vocab, kind, valid_data, epoch, stats, FINETUNE.best)
            if len(st.history) > max(t.finetune_min_epochs, t.nonmono) and \
                    val_loss > min(_before_last(st.history, t.nonmono)):
                progress.line("Done!")
                st.stopped = True
            else:
                st.history.append(val_loss)
            _end_validated_epoch(run, s, vocab, kind, epoch, stats, val_loss, s.average is not None)
    return _finish_validated(run, s, kind, device, test_data, FINETUNE.best)


# ---- overfit ("learning to recite") ----------------------------------------------------------------
def overfit(cfg: LMConfig, path: Path, *, device: torch.device, resume: bool = False,
            force: bool = False, quiet: bool = False, stream=None, world: World = World()) -> dict[str, Any]:
    """Memorize the training split; per epoch train perplexity and accuracy (Table 3)."""
    kind = "overfit"
    run, s, vocab, columns, cursor = _start_new_model(
        cfg, path, ("train",), device=device, resume=resume, force=force, quiet=quiet, stream=stream,
        world=world)
    progress, t = s.progress, cfg.train
    train_data = world.shard_columns(columns["train"]).to(device)
    st = s.state
    with StopRequest() as s.stop:
        while not st.stopped and st.epoch < t.epochs:
            epoch = st.epoch + 1
            stats = _epoch_or_interrupt(run, s, vocab, kind, train_data, epoch, cursor, count_correct=True)
            cursor = None
            correct = round(stats.accuracy * stats.tokens)
            progress.line(f"Epoch {epoch}  -   {correct}/{stats.tokens} train items correctly predicted;  "
                          f"accuracy {stats.accuracy:.3f} | train ppl {_ppl(stats.loss):8.2f}")
            if stats.loss < st.best_val_loss:
                run.save(TRAIN.best, {**_model_record(s, vocab, kind), "epoch": epoch,
                                      "train_loss": stats.loss})
                st.best_val_loss, st.best_epoch = stats.loss, epoch
            if 1 - stats.accuracy < t.memorize_eps:
                progress.line(f"memorized the training data after {epoch} epochs")
                st.memorized_epoch, st.stopped = epoch, True
            st.epoch = epoch
            st.last = {"train_loss": stats.loss, "train_acc": stats.accuracy}
            run.append_metrics({"epoch": epoch, "elapsed_s": round(s.elapsed(), 3),
                                "train_loss": stats.loss, "train_ppl": _ppl(stats.loss),
                                "train_acc": stats.accuracy, "lr": s.lr()})
            _save_last(run, s, vocab, kind)
    return _results(kind, s, run, device, {
        "train_ppl": _ppl(st.last["train_loss"]) if st.last else None,
        "train_acc": st.last.get("train_acc"), "epochs_to_memorize": st.memorized_epoch})


# ---- eval-lm -------------------------------------------------------------------------------------
def eval_lm(path: Path, *, device: torch.device, split: str = "test", batch_size: Optional[int] = None,
            data: Optional[str] = None, finetuned: bool = False, quiet: bool = False,
            stream=None) -> dict[str, Any]:
    """Loss and perplexity of a run's best model (or best finetuned model) on one split."""
    if split not in SPLITS:
        raise SparseseqError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    files: RunFiles = FINETUNE if finetuned else TRAIN
    run = RunDir(path, files)
    if not run.path.is_dir():
        raise SparseseqError(f"run folder {run.path} does not exist: give a folder made by train-lm")
    ckpt = run.load(files.best)
    cfg = config_of(ckpt, str(run.path / files.best))
    vocab = list(ckpt["vocab"])
    corpus = load_lm_corpus(data or cfg.data.path, vocab=Vocabulary(vocab), splits=(split,),
                            corpus_seed=cfg.data.corpus_seed)
    t = cfg.train
    if batch_size is None:
        batch_size = t.test_batch_size if split == "test" else t.eval_batch_size
    if batch_size < 1:
        raise SparseseqError(f"--batch-size {batch_size} must be >= 1")
    model = build_model(cfg, len(vocab))
    model.load_state_dict(ckpt["model"])
    model.to(device)
    progress = Progress(quiet=quiet, stream=stream)
    loss, tokens = evaluate(model, batchify(corpus.splits[split], batch_size).to(device), t.bptt,
                            max_batches=t.max_batches, progress=progress, description=split)
    return {"run": str(run.path), "checkpoint": files.best, "split": split, "batch_size": batch_size,
            "tokens": tokens, "loss": loss, "ppl": _ppl(loss)}


# ---- command-line glue ---------------------------------------------------------------------------
def run_command(phase, preset, config_file, sets, save, resume, force, device, print_config,
                as_json, quiet, flags) -> None:
    """train-lm and overfit: resolve the config and run folder, then run ``phase`` (in every
    process under torchrun; rank 0 prints)."""
    from sparseseq_cli.config import dump_config

    with data_parallel(device) as world:
        cfg, path = world.on_main(lambda: resolve_run(
            "lm", preset, str(config_file) if config_file else None, sets or (), flags,
            str(save) if save else None, resume))
        if print_config:
            if world.is_main:
                print(dump_config(cfg), end="")
            return
        record = phase(cfg, path, device=world.device, resume=resume, force=force,
                       quiet=quiet or as_json, world=world)
        if world.is_main:
            print_result(record, as_json=as_json, quiet=quiet)


def finetune_command(run_dir, sets, flags, device, resume, force, as_json, quiet) -> None:
    """finetune-lm (in every process under torchrun; rank 0 prints)."""
    with data_parallel(device) as world:
        record = finetune_lm(run_dir, device=world.device, overrides=sets or (), flags=flags,
                             resume=resume, force=force, quiet=quiet or as_json, world=world)
        if world.is_main:
            print_result(record, as_json=as_json, quiet=quiet)


def print_result(record: dict[str, Any], *, as_json: bool, quiet: bool) -> None:
    """stdout: the record as JSON, or one summary line."""
    if as_json:
        print(json.dumps(record, indent=2))
        return
    if quiet:
        return
    metrics = record.get("metrics", record)
    shown = [f"{key} {metrics[key]:.2f}" for key in ("valid_ppl", "test_ppl", "train_ppl", "ppl")
             if isinstance(metrics.get(key), float)]
    if isinstance(metrics.get("train_acc"), float):
        shown.append(f"train_acc {metrics['train_acc']:.4f}")
    if record.get("tokens_per_s"):
        shown.append(f"{record['tokens_per_s']:,.0f} tokens/s")
    print(" | ".join(shown))
