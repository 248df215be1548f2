"""``eval-lm``: loss and perplexity of a run's best model on one split."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from sparseseq_cli.config import Precision, config_from_dict
from sparseseq_cli.corpora.lm_data import SPLITS, batchify, load_lm_corpus
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.progress import Progress
from sparseseq_cli.inference.run import check_task, open_checkpoint
from sparseseq_cli.training.lm_loop import evaluate, perplexity
from sparseseq_cli.training.precision import Mixed


def eval_lm(path: Path, *, device: torch.device, split: str = "test", batch_size: Optional[int] = None,
            data: Optional[str] = None, finetuned: bool = False, precision: Optional[Precision] = None,
            quiet: bool = False) -> dict[str, Any]:
    """Loss and perplexity of a run's best model (or best finetuned model) on one split;
    ``note`` says when the run is unfinished or diverged (its best model so far is used)."""
    if split not in SPLITS:
        raise SparseseqError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    run, ckpt, note = open_checkpoint(path, finetuned=finetuned)
    check_task(ckpt, run.path, "lm")
    cfg = config_from_dict(ckpt["config"], str(run.path / run.files.best))
    vocab = list(ckpt["vocab"])
    # another corpus (--data) may hold words the model never saw: they count as <unk>, as
    # `score` does, and the record says how many
    corpus = load_lm_corpus(data or cfg.data.path, vocab=Vocabulary(vocab), splits=(split,),
                            corpus_seed=cfg.data.corpus_seed, map_unknown=True)
    t = cfg.train
    if batch_size is None:
        batch_size = t.test_batch_size if split == "test" else t.eval_batch_size
    if batch_size < 1:
        raise SparseseqError(f"--batch-size {batch_size} must be >= 1")
    model = LanguageModel.from_config(cfg.model, len(vocab))
    model.load_state_dict(ckpt["model"])
    model.to(device)
    precision = precision or t.precision
    with Mixed(precision, device).autocast():
        loss, tokens = evaluate(model, batchify(corpus.splits[split], batch_size).to(device), t.bptt,
                                max_batches=t.max_batches, progress=Progress(quiet=quiet), description=split)
    return {"run": str(run.path), "checkpoint": run.files.best, "note": note, "split": split, "batch_size": batch_size,
            "tokens": tokens, "unk": corpus.unknown[split], "precision": precision.value, "loss": loss,
            "ppl": perplexity(loss)}
