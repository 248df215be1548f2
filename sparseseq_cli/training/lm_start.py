"""The start of a language-model phase: corpus, run folder, vocabulary, and a seeded
session on a freshly built model (restored from the last checkpoint when resuming)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Optional

import torch

from sparseseq_cli.config import LMConfig
from sparseseq_cli.corpora.lm_data import LMCorpus, batchify, load_lm_corpus, unigram_perplexity
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.progress import Progress
from sparseseq_cli.run_folder import RunFolder
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.lm_checkpoints import restore
from sparseseq_cli.training.lm_loop import Session
from sparseseq_cli.training.precision import Mixed
from sparseseq_cli.training.start import open_phase, released_on_error


def read_corpus(cfg: LMConfig, splits: tuple[str, ...]) -> tuple[LMCorpus, dict[str, torch.Tensor]]:
    """The corpus and its batch columns, read before the run folder is touched, so that bad
    data (or a batch size too large for it) leaves nothing behind."""
    corpus = load_lm_corpus(cfg.data.path, cfg.data.vocab_order, corpus_seed=cfg.data.corpus_seed,
                            splits=splits)
    t = cfg.train
    sizes = {"train": t.batch_size, "valid": t.eval_batch_size, "test": t.test_batch_size}
    return corpus, {split: batchify(corpus.splits[split], sizes[split]) for split in splits}


def _check_vocabulary(cfg: LMConfig, corpus: LMCorpus):
    """Resuming, the data must give the vocabulary the run began with."""
    def check(run: RunFolder) -> None:
        saved = run.vocab_path()
        if run.resuming and saved is not None and Vocabulary.load(saved).words != corpus.vocab.words:
            raise SparseseqError(f"the data at {cfg.data.path} gives another vocabulary than "
                                 f"{saved}: resume with the data the run started with, "
                                 f"or --force to start over")
    return check


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


def new_session(cfg: LMConfig, model: LanguageModel, progress: Progress, world: World) -> Session:
    """The session of a freshly built ``model``; under torchrun DDP wraps it (all ranks then
    hold rank 0's weights) and each rank gets its own dropout stream."""
    t = cfg.train
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.wdecay)
    world.seed_dropout(t.seed)
    return Session(cfg, model, optimizer, progress, seq_rng=random.Random(t.seed), world=world,
                   net=world.wrap(model), amp=Mixed(t.precision, model.decoder_bias.device))


def start_new_model(cfg: LMConfig, path: Path, splits: tuple[str, ...], *, device: torch.device,
                    resume: bool, force: bool, quiet: bool, world: World) -> tuple[RunFolder, Session, list[str], dict[str, torch.Tensor], Optional[dict]]:
    """The start of train-lm and overfit: the corpus read before the run folder is touched
    (bad data leaves nothing behind), the run opened with its vocabulary, and a session on a
    freshly built, seeded model, restored from the last checkpoint when resuming. Returns
    the run, the session, the vocabulary, the batch columns and the mid-epoch cursor (None:
    start at an epoch)."""
    corpus, columns = read_corpus(cfg, splits)
    world.check_columns(cfg.train.batch_size)   # before the run folder is made
    run = open_phase(cfg, path, resume=resume, force=force, world=world,
                     check=_check_vocabulary(cfg, corpus))
    with released_on_error(run):
        progress = Progress(quiet=quiet or not world.is_main, log=run.log)
        torch.manual_seed(cfg.train.seed)
        run.write_vocab(corpus.vocab.words)
        s = new_session(cfg, LanguageModel.from_config(cfg.model, len(corpus.vocab.words)).to(device),
                        progress, world)
        cursor = None
        if run.resuming and world.on_main(lambda: run.has(run.files.last)):
            cursor = restore(run, s)
            progress.line(f"resuming {run.path} after epoch {s.state.epoch}" + (" (mid-epoch)" if cursor else ""))
        else:
            _describe(s, corpus, device)
    return run, s, corpus.vocab.words, columns, cursor
