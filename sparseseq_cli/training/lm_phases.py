"""The three language-model phases, which share one training pass (``lm_loop.py``) and
differ in what happens between epochs:

- ``train-lm``: validate (the averaged weights once NT-ASGD has switched), keep the best,
  switch to averaging when validation stops improving for ``nonmono`` epochs, stop after
  ``asgd_patience`` averaged epochs in a row that were worse than the one before;
- ``finetune-lm``: averaging from the start on the trained model, stop when validation
  is no better than ``nonmono`` epochs ago (not before ``finetune_min_epochs``);
- ``overfit``: no validation; learning rate times ``lr_gamma`` per epoch, stop when the
  training accuracy exceeds 1 - ``memorize_eps``.

Under torchrun every decision (NT-ASGD's switch, stopping, the best model) follows from
numbers summed over the ranks, so every rank decides alike, and rank 0 writes the run.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from sparseseq_cli.config import LMConfig, config_to_dict, load_config
from sparseseq_cli.corpora.lm_data import batchify, load_lm_corpus
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.progress import Progress
from sparseseq_cli.run_folder import CONFIG, FINETUNE, TRAIN, RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.averaging import ParameterAverage
from sparseseq_cli.training.divergence import stop_diverged
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.lm_checkpoints import restore, save_last
from sparseseq_cli.training.lm_loop import EpochStats, Session, evaluate, perplexity, train_epoch
from sparseseq_cli.training.lm_start import new_session, start_new_model
from sparseseq_cli.training.start import open_phase, results_record
from sparseseq_cli.training.tensorboard import EpochLog
from sparseseq_cli.training.state import StopRequest, TrainingInterrupted, model_record

RULE = "-" * 89


def _diverge(run: RunFolder, s: Session, phase: Phase, device: torch.device, epoch: int,
             batch: Optional[int], where: str) -> None:
    """Record the divergence in results.json and stop with one line (the last good
    checkpoints stay as they were)."""
    stop_diverged(run, _record(s, phase, device, {"best_epoch": s.state.best_epoch},
                               diverged={"epoch": epoch, "batch": batch, "where": where, "lr": s.cfg.train.lr}))


def _epoch_or_interrupt(run: RunFolder, s: Session, phase: Phase, vocab: list[str], data: torch.Tensor,
                        epoch: int, cursor: Optional[dict], count_correct: bool = False) -> EpochStats:
    stats = train_epoch(s, data, epoch, cursor, count_correct)
    if stats.diverged_batch is not None:
        _diverge(run, s, phase, data.device, epoch, stats.diverged_batch, "training")
    if stats.cursor is not None:
        save_last(run, s, phase, vocab, stats.cursor)
        s.progress.line(RULE)
        s.progress.line(f"Exiting from training early (Ctrl-C) in epoch {epoch}")
        raise TrainingInterrupted(f"interrupted: saved a resumable checkpoint in {run.path}; "
                                  f"continue with --resume")
    s.state.train_tokens += stats.tokens
    s.state.train_s += stats.seconds
    return stats


def _validate_epoch(run: RunFolder, s: Session, phase: Phase, vocab: list[str], valid_data: torch.Tensor,
                    epoch: int, stats: EpochStats) -> float:
    """train-lm and finetune-lm: validate (the averaged weights once averaging runs), log the
    original's end-of-epoch lines, save the best model when validation improved."""
    t, st, progress = s.cfg.train, s.state, s.progress
    averaged = s.average is not None
    with s.average.swapped_in() if averaged else nullcontext():
        with s.amp.autocast():
            val_loss, _ = evaluate(s.model, valid_data, t.bptt, max_batches=t.max_batches,
                                   progress=progress, description="valid", world=s.world)
        if not math.isfinite(perplexity(val_loss)):
            _diverge(run, s, phase, valid_data.device, epoch, None, "validation")
        progress.line(RULE)
        progress.line(f"| end of epoch {epoch:3d} | time: {stats.seconds:5.2f}s | valid loss {val_loss:5.2f} | "
                      f"valid ppl {perplexity(val_loss):8.2f}")
        progress.line(RULE)
        if val_loss < st.best_val_loss:
            run.save(run.files.best, {**model_record(phase, s.cfg, vocab, s.model), "epoch": epoch,
                                      "val_loss": val_loss})
            st.best_val_loss, st.best_epoch = val_loss, epoch
            progress.line(f"saved the best {'averaged ' if averaged else ''}model so far to "
                          f"{run.files.best} (valid ppl {perplexity(val_loss):.2f})")
    return val_loss


def _end_validated_epoch(run: RunFolder, s: Session, phase: Phase, vocab: list[str], epoch: int,
                         stats: EpochStats, val_loss: float, averaged: bool) -> None:
    """train-lm and finetune-lm after an epoch's validation: metrics line, then the last
    checkpoint (in this order, so a kill between them repeats the epoch, never loses it)."""
    s.state.epoch = epoch
    s.state.last = {"train_loss": stats.loss, "valid_loss": val_loss}
    s.log.epoch({"epoch": epoch, "elapsed_s": round(s.clock.elapsed(), 3),
                 "train_loss": stats.loss, "valid_loss": val_loss,
                 "valid_ppl": perplexity(val_loss), "lr": s.lr(), "asgd": averaged})
    save_last(run, s, phase, vocab)


def _test(run: RunFolder, s: Session, test_data: torch.Tensor) -> float:
    """The saved best model's test loss; under torchrun rank 0 computes it alone (the test
    batch is usually a single column) and tells the others."""
    def test() -> float:
        if not run.has(run.files.best):
            raise SparseseqError(f"no model was saved in {run.path}: the validation loss was never "
                                 f"finite (diverged?); lower train.lr and start over with --force")
        s.model.load_state_dict(run.load(run.files.best)["model"])
        t = s.cfg.train
        with s.amp.autocast():
            test_loss, _ = evaluate(s.model, test_data, t.bptt, max_batches=t.max_batches,
                                    progress=s.progress, description="test")
        s.progress.line("=" * 89)
        s.progress.line(f"| End of training | test loss {test_loss:5.2f} | test ppl {perplexity(test_loss):8.2f}")
        s.progress.line("=" * 89)
        return test_loss

    return s.world.on_main(test)


def _record(s: Session, phase: Phase, device: torch.device, metrics: dict[str, Any],
            diverged: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The session's results.json record (of a finished run, or of a diverged one)."""
    st = s.state
    return results_record(phase=phase, cfg=s.cfg, params=s.model.param_counts(), metrics=metrics,
                          epochs=st.epoch, wall_time_s=s.clock.elapsed(), train_tokens=st.train_tokens,
                          train_s=st.train_s, device=device, diverged=diverged)


def _results(run: RunFolder, s: Session, phase: Phase, device: torch.device,
             metrics: dict[str, Any]) -> dict[str, Any]:
    record = _record(s, phase, device, metrics)
    run.write_results(record)
    return record


def _finish_validated(run: RunFolder, s: Session, phase: Phase, device: torch.device,
                      test_data: torch.Tensor) -> dict[str, Any]:
    """train-lm and finetune-lm at the end: test the best model, write the results."""
    test_loss = _test(run, s, test_data)
    st = s.state
    return _results(run, s, phase, device, {
        "valid_loss": st.best_val_loss, "valid_ppl": perplexity(st.best_val_loss),
        "test_loss": test_loss, "test_ppl": perplexity(test_loss), "best_epoch": st.best_epoch})


def _epoch_log(run: RunFolder, s: Session, phase: Phase) -> EpochLog:
    """metrics.jsonl (and TensorBoard events when asked) for the epochs to come."""
    return EpochLog(run, phase.value, s.cfg.log.tensorboard, s.state.epoch if run.resuming else None)


def _validated_epochs(run: RunFolder, s: Session, phase: Phase, vocab: list[str], train_data: torch.Tensor,
                      valid_data: torch.Tensor, cursor: Optional[dict],
                      between: Callable[[float, bool], None]) -> None:
    """train-lm's and finetune-lm's epochs: train, validate, apply the phase's rule
    ``between(val_loss, averaged)`` (which may stop the run), record the epoch."""
    st = s.state
    with _epoch_log(run, s, phase) as s.log, StopRequest() as s.stop:
        while not st.stopped and st.epoch < s.cfg.train.epochs:
            epoch = st.epoch + 1
            stats = _epoch_or_interrupt(run, s, phase, vocab, train_data, epoch, cursor)
            cursor = None
            averaged = s.average is not None
            val_loss = _validate_epoch(run, s, phase, vocab, valid_data, epoch, stats)
            between(val_loss, averaged)
            _end_validated_epoch(run, s, phase, vocab, epoch, stats, val_loss, averaged)


def _before_last(history: list[float], n: int) -> list[float]:
    """``history[:-n]``, also for n = 0 (where ``[:-0]`` would be empty)."""
    return history[:len(history) - n]


# ---- train-lm ------------------------------------------------------------------------------------
def train_lm(cfg: LMConfig, path: Path, *, device: torch.device, resume: bool = False,
             force: bool = False, quiet: bool = False, world: World = World()) -> dict[str, Any]:
    """AWD-LSTM training with NT-ASGD; returns the results.json record."""
    phase = Phase.TRAIN_LM
    run, s, vocab, columns, cursor = start_new_model(
        cfg, path, ("train", "valid", "test"), device=device, resume=resume, force=force, quiet=quiet,
        world=world)
    with run:   # the folder stays locked until the phase ends
        progress, t = s.progress, cfg.train
        train_data = world.shard_columns(columns["train"]).to(device)
        valid_data = world.split_columns(columns["valid"]).to(device)
        test_data = columns["test"].to(device)
        st = s.state

        def nt_asgd(val_loss: float, averaged: bool) -> None:
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

        _validated_epochs(run, s, phase, vocab, train_data, valid_data, cursor, nt_asgd)
        return _finish_validated(run, s, phase, device, test_data)


# ---- finetune-lm ---------------------------------------------------------------------------------
def finetune_lm(path: Path, *, device: torch.device, overrides: Iterable[str] = (),
                flags: Optional[Mapping[str, Any]] = None, resume: bool = False, force: bool = False,
                quiet: bool = False, world: World = World()) -> dict[str, Any]:
    """Averaged SGD from the best trained model, into the ``*_finetune*`` files."""
    phase = Phase.FINETUNE_LM
    path = Path(path)

    def trained_model() -> tuple[dict[str, Any], LMConfig]:
        trained = RunFolder(path, TRAIN)
        if not trained.finished():
            raise SparseseqError(f"{path} holds no finished train-lm run (no results.json): train it "
                                 f"first, or --resume its training")
        best = trained.load(TRAIN.best)
        cfg = load_config(config_file=path / CONFIG, overrides=overrides, flags=flags, task="lm")
        given, saved = config_to_dict(cfg), best["config"]
        if given["model"] != saved["model"] or given["data"] != saved["data"]:
            raise SparseseqError("finetune-lm keeps the trained model and data: change only train.* keys")
        return best, cfg

    best, cfg = world.on_main(trained_model)
    world.check_columns(cfg.train.batch_size)
    run = open_phase(cfg, path, resume=resume, force=force, world=world, files=FINETUNE)
    with run:
        progress = Progress(quiet=quiet or not world.is_main, log=run.log)
        t = cfg.train
        torch.manual_seed(t.seed)
        vocab = list(best["vocab"])
        corpus = load_lm_corpus(cfg.data.path, vocab=Vocabulary(vocab), corpus_seed=cfg.data.corpus_seed)
        model = LanguageModel.from_config(cfg.model, len(vocab))
        model.load_state_dict(best["model"])
        s = new_session(cfg, model.to(device), progress, world)
        train_data = world.shard_columns(batchify(corpus.splits["train"], t.batch_size)).to(device)
        valid_data = world.split_columns(batchify(corpus.splits["valid"], t.eval_batch_size)).to(device)
        test_data = batchify(corpus.splits["test"], t.test_batch_size).to(device)
        cursor = None
        if run.resuming and world.on_main(lambda: run.has(FINETUNE.last)):
            cursor = restore(run, s)
            progress.line(f"resuming finetuning of {path} after epoch {s.state.epoch}")
        else:
            progress.line(f"finetuning {path / TRAIN.best} (epoch {best['epoch']}) into {FINETUNE.best}")
            with s.amp.autocast():
                s.state.best_val_loss, _ = evaluate(s.model, valid_data, t.bptt, max_batches=t.max_batches,
                                                    progress=progress, description="valid", world=world)
            progress.line(f"| start | valid loss {s.state.best_val_loss:5.2f} | "
                          f"valid ppl {perplexity(s.state.best_val_loss):8.2f}")
            run.save(FINETUNE.best, {**model_record(phase, cfg, vocab, s.model), "epoch": 0,
                                     "val_loss": s.state.best_val_loss})
            s.average = ParameterAverage(s.model.parameters())
        st = s.state

        def stop_when_no_better(val_loss: float, averaged: bool) -> None:
            if len(st.history) > max(t.finetune_min_epochs, t.nonmono) and \
                    val_loss > min(_before_last(st.history, t.nonmono)):
                progress.line("Done!")
                st.stopped = True
            else:
                st.history.append(val_loss)

        _validated_epochs(run, s, phase, vocab, train_data, valid_data, cursor, stop_when_no_better)
        return _finish_validated(run, s, phase, device, test_data)


# ---- overfit ("learning to recite") ----------------------------------------------------------------
def overfit(cfg: LMConfig, path: Path, *, device: torch.device, resume: bool = False,
            force: bool = False, quiet: bool = False, world: World = World()) -> dict[str, Any]:
    """Memorize the training split; per epoch train perplexity and accuracy (Table 3)."""
    phase = Phase.OVERFIT
    run, s, vocab, columns, cursor = start_new_model(
        cfg, path, ("train",), device=device, resume=resume, force=force, quiet=quiet, world=world)
    with run:
        progress, t = s.progress, cfg.train
        train_data = world.shard_columns(columns["train"]).to(device)
        st = s.state
        with _epoch_log(run, s, phase) as s.log, StopRequest() as s.stop:
            while not st.stopped and st.epoch < t.epochs:
                epoch = st.epoch + 1
                stats = _epoch_or_interrupt(run, s, phase, vocab, train_data, epoch, cursor, count_correct=True)
                cursor = None
                correct = round(stats.accuracy * stats.tokens)
                progress.line(f"Epoch {epoch}  -   {correct}/{stats.tokens} train items correctly predicted;  "
                              f"accuracy {stats.accuracy:.3f} | train ppl {perplexity(stats.loss):8.2f}")
                if stats.loss < st.best_val_loss:
                    run.save(TRAIN.best, {**model_record(phase, cfg, vocab, s.model), "epoch": epoch,
                                          "train_loss": stats.loss})
                    st.best_val_loss, st.best_epoch = stats.loss, epoch
                if 1 - stats.accuracy < t.memorize_eps:
                    progress.line(f"memorized the training data after {epoch} epochs")
                    st.memorized_epoch, st.stopped = epoch, True
                st.epoch = epoch
                st.last = {"train_loss": stats.loss, "train_acc": stats.accuracy}
                s.log.epoch({"epoch": epoch, "elapsed_s": round(s.clock.elapsed(), 3),
                             "train_loss": stats.loss, "train_ppl": perplexity(stats.loss),
                             "train_acc": stats.accuracy, "lr": s.lr()})
                save_last(run, s, phase, vocab)
        return _results(run, s, phase, device, {
            "train_ppl": perplexity(st.last["train_loss"]) if st.last else None,
            "train_acc": st.last.get("train_acc"), "epochs_to_memorize": st.memorized_epoch})
