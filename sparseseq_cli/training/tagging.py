"""``train-pos``: train the tagger (docs/training.md) in a run folder.

Each epoch: one pass over the training sentences (length-grouped batches, cross-entropy
over real tokens), then dev accuracy; the model with the best dev accuracy is kept in
``checkpoint_best.pt``. At the end: accuracy after the last epoch (the original's number)
and of the best-dev model, on dev and (when there is a test split) test, over all tokens
and over tokens other than ``-NONE-``. ``--resume`` continues from the last finished epoch
with model, optimizer, random generators and the best-so-far intact.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import torch

from sparseseq_cli.config import POSConfig
from sparseseq_cli.corpora.conll import check_tags, load_tagged_corpus
from sparseseq_cli.corpora.tag_batches import build_vocabulary, encode, eval_batches, none_tag_id, train_batches
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.devices import tagger_threads
from sparseseq_cli.models.tagger import Tagger
from sparseseq_cli.progress import Progress
from sparseseq_cli.run_folder import TRAIN, RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.divergence import stop_diverged
from sparseseq_cli.training.precision import Mixed
from sparseseq_cli.training.tensorboard import EpochLog
from sparseseq_cli.training.start import open_phase, results_record
from sparseseq_cli.training.state import (Clock, StopRequest, TaggerState, TrainingInterrupted, model_record,
                                          restore_state)
from sparseseq_cli.training.tagging_loop import Accuracy, evaluate, make_optimizer, train_epoch

PHASE = Phase.TRAIN_POS


def _prepare(cfg: POSConfig, saved: Optional[dict]) -> tuple[Vocabulary, tuple[str, ...], dict]:
    """Vocabulary, tag set and encoded splits; a resumed run keeps its own vocabulary and tags."""
    corpus = load_tagged_corpus(cfg.data.path, cfg.data.corpus_seed)
    if saved is None:
        vocab, tags = build_vocabulary(corpus.train, cfg.data.vocab_order), corpus.tags
    else:
        vocab, tags = Vocabulary(saved["vocab"]), tuple(saved["tags"])
        for name, sentences in corpus.splits().items():
            check_tags(sentences, tags, Path(cfg.data.path) / f"{name}.conll", "the run's tag set")
    return vocab, tags, {name: encode(sentences, vocab, tags) for name, sentences in corpus.splits().items()}


def _final_metrics(model: Tagger, run: RunFolder, eval_sets: dict, device: torch.device,
                   none_id: Optional[int], last_dev: Accuracy, state: TaggerState,
                   world: World) -> dict[str, Any]:
    """After the last epoch (the original's number) and with the best-dev model."""
    def test_figures(suffix: str) -> dict[str, Optional[float]]:
        result = evaluate(model, eval_sets["test"], device, none_id, world) if "test" in eval_sets else None
        return {f"test_acc{suffix}": result.acc if result else None,
                f"test_acc_no_none{suffix}": result.acc_no_none if result else None}

    metrics = {"dev_acc": last_dev.acc, "dev_acc_no_none": last_dev.acc_no_none, **test_figures("")}
    model.load_state_dict(world.on_main(lambda: run.load(TRAIN.best))["model"])
    return {**metrics, "best_epoch": state.best_epoch, "best_dev_acc": state.best_dev_acc,
            **test_figures("_at_best")}


def _describe(progress: Progress, cfg: POSConfig, device: torch.device, vocab: Vocabulary,
              tags: tuple[str, ...], splits: dict, params: dict[str, int], world: World) -> None:
    progress.line(f"| train-pos {cfg.preset or ''} seed {cfg.train.seed} on {device} | vocabulary "
                  f"{len(vocab):,} ({cfg.data.vocab_order.value}) | {len(tags)} tags | sentences "
                  + ", ".join(f"{k} {len(v):,}" for k, v in splits.items()))
    progress.line("| parameters " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    if world.distributed:
        progress.line(f"| data parallel: {world.size} processes ({world.backend}), each takes "
                      f"one sentence in {world.size} of every batch")
    majority = int(torch.bincount(torch.cat(splits["train"].tags)).argmax())
    share = float((torch.cat(splits["valid"].tags) == majority).float().mean())
    progress.line(f"| baseline: the most frequent training tag ({tags[majority]}) everywhere "
                  f"gives dev acc {share:.4f}")


def train_pos(cfg: POSConfig, path: Path, *, device: torch.device, resume: bool = False,
              force: bool = False, quiet: bool = False, world: World = World()) -> dict[str, Any]:
    """Train (or resume) a tagger in the run folder ``path``; returns the results.json record.
    Under torchrun ``world`` is this rank's place (see :func:`data_parallel`)."""
    with tagger_threads(device):
        return _train_pos(cfg, path, device=device, resume=resume, force=force, quiet=quiet, world=world)


def _train_pos(cfg: POSConfig, path: Path, *, device: torch.device, resume: bool, force: bool,
               quiet: bool, world: World) -> dict[str, Any]:
    run = open_phase(cfg, path, resume=resume, force=force, world=world)
    with run:   # the folder stays locked until the phase ends
        progress = Progress(quiet=quiet or not world.is_main, log=run.log)
        saved = world.on_main(lambda: run.load(TRAIN.last) if run.has(TRAIN.last) else None) \
            if run.resuming else None
        vocab, tags, splits = _prepare(cfg, saved)
        none_id = none_tag_id(tags)

        torch.manual_seed(cfg.train.seed)
        model = Tagger.from_config(cfg.model, len(vocab), len(tags)).to(device)
        world.broadcast_parameters(model)
        world.seed_dropout(cfg.train.seed)
        optimizer = make_optimizer(cfg, model)
        amp = Mixed(cfg.train.precision, device)
        batching = torch.Generator().manual_seed(cfg.train.seed)
        state = TaggerState()
        params = model.param_counts()
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            amp.load_state_dict(saved.get("scaler"))
            batching.set_state(saved["batching"])
            world.restore_rng(saved, cfg.train.seed)
            state = restore_state(TaggerState, saved["state"], str(run.path / TRAIN.last))
            run.trim_metrics(state.epoch)
            progress.line(f"| resuming {run.path} after epoch {state.epoch}")
        else:
            run.write_vocab(vocab.words)
            _describe(progress, cfg, device, vocab, tags, splits, params, world)
        clock = Clock(state.elapsed_s)

        def record(metrics: dict[str, Any], diverged: Optional[dict[str, Any]] = None) -> dict[str, Any]:
            """The results.json record (of a finished run, or of a diverged one)."""
            return results_record(phase=PHASE, cfg=cfg, params=params, metrics=metrics, epochs=state.epoch,
                                  wall_time_s=clock.elapsed(), train_tokens=state.train_tokens,
                                  train_s=state.train_s, device=device, diverged=diverged)

        def diverge(epoch: int, batch: int) -> None:
            stop_diverged(run, record({"best_epoch": state.best_epoch},
                                      {"epoch": epoch, "batch": batch, "where": "training", "lr": cfg.train.lr}))

        eval_sets = {name: eval_batches(split, cfg.train.eval_batch_size) for name, split in splits.items()
                     if name != "train"}
        last_dev = None
        with EpochLog(run, PHASE.value, cfg.log.tensorboard, state.epoch if saved else None) as log, \
                StopRequest() as stop:
            for epoch in range(state.epoch + 1, cfg.train.epochs + 1):
                start = time.perf_counter()
                batches = train_batches(splits["train"], cfg.train.batch_size, batching)
                batches = batches[:cfg.train.max_batches] if cfg.train.max_batches else batches
                with progress.bar(f"epoch {epoch}", len(batches)) as bar:
                    result = train_epoch(model, optimizer, batches, device, bar, stop, world, amp)
                if result.stopped:
                    progress.line(f"| stopped during epoch {epoch}")
                    raise TrainingInterrupted(f"stopped during epoch {epoch}: `sparseseq train-pos "
                                              f"--resume --save {run.path}` continues after epoch {state.epoch}")
                if result.diverged_batch is not None:
                    diverge(epoch, result.diverged_batch)
                loss = result.loss
                train_s = time.perf_counter() - start
                with amp.autocast():
                    last_dev = evaluate(model, eval_sets["valid"], device, none_id, world)
                state.epoch, state.train_s = epoch, state.train_s + train_s
                state.train_tokens += sum(b.tokens for b in batches)
                if last_dev.acc > state.best_dev_acc:
                    state.best_epoch, state.best_dev_acc = epoch, last_dev.acc
                    run.save(TRAIN.best, {**model_record(PHASE, cfg, vocab.words, model, tags), "epoch": epoch})
                # the metrics line first, then the last checkpoint: a kill between the two makes the
                # resumed run repeat this epoch (and trim its line), never lose it
                log.epoch({"epoch": epoch, "elapsed_s": round(clock.elapsed(), 3),
                           "train_s": round(train_s, 3), "train_loss": loss,
                           "dev_acc": last_dev.acc, "dev_acc_no_none": last_dev.acc_no_none})
                state.elapsed_s = clock.elapsed()
                run.save(TRAIN.last, {**model_record(PHASE, cfg, vocab.words, model, tags),
                                      "optimizer": optimizer.state_dict(), "state": state.as_dict(),
                                      **world.rng_record(), "batching": batching.get_state(),
                                      "scaler": amp.state_dict()})
                progress.line(f"| epoch {epoch:3d} | time {train_s:6.2f}s train, "
                              f"{time.perf_counter() - start - train_s:5.2f}s dev | train loss {loss:6.4f} | "
                              f"dev acc {last_dev.acc:.4f} | without -NONE- {last_dev.acc_no_none:.4f}")

        if last_dev is None:   # resumed after the last epoch had finished: the final evaluations remain
            with amp.autocast():
                last_dev = evaluate(model, eval_sets["valid"], device, none_id, world)
        with amp.autocast():
            metrics = _final_metrics(model, run, eval_sets, device, none_id, last_dev, state, world)
        results = record(metrics)
        run.write_results(results)
        line = f"| end of training | dev acc {last_dev.acc:.4f}"
        if metrics["test_acc"] is not None:
            line += f" | test acc {metrics['test_acc']:.4f} (without -NONE- {metrics['test_acc_no_none']:.4f})"
        progress.line(line + f" | best dev acc {state.best_dev_acc:.4f} at epoch {state.best_epoch}")
        return results
