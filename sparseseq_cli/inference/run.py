"""A trained run, loaded for use: which checkpoint, its configuration, vocabulary and model.

:func:`load_run` (``loading.py``) builds the task's subclass; this module holds what both
share: the checks that a folder is a run and the choice of its checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from sparseseq_cli.config import Config
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import autocast
from sparseseq_cli.run_folder import CONFIG, FINETUNE, TRAIN, RunFiles, RunFolder

# the commands that train each task, named in the errors
TRAINED_BY = {"lm": "train-lm", "pos": "train-pos"}


@dataclass
class Run:
    """A run's best model in eval mode, ready to use. ``note`` is a line worth telling the
    user (an unfinished or diverged run), None otherwise."""
    path: Path
    checkpoint: str             # the checkpoint's file name in the run folder
    epoch: Optional[int]        # the epoch that checkpoint was saved at (0: before finetuning)
    task: str                   # "lm" or "pos"
    phase: str                  # the phase that wrote the checkpoint
    config: Config = field(repr=False)
    vocab: Vocabulary = field(repr=False)
    model: nn.Module = field(repr=False)
    device: torch.device
    finished: bool
    note: Optional[str]

    def autocast(self):
        """The precision the run trained in (train.precision), so its numbers reproduce."""
        return autocast(self.config.train.precision, self.device)

    def describe(self) -> str:
        """Which model this is, for a command's summary line."""
        epoch = f", epoch {self.epoch}" if self.epoch is not None else ""
        return f"{self.path / self.checkpoint} ({self.phase}{epoch})"


def open_checkpoint(path: str | Path, *, finetuned: bool) -> tuple[RunFolder, dict[str, Any], Optional[str]]:
    """The run folder at ``path``, its best (or best finetuned) checkpoint, loaded on the CPU
    with ``weights_only=True``, and a note when the run has not finished (or diverged)."""
    files: RunFiles = FINETUNE if finetuned else TRAIN
    run = RunFolder(path, files)
    if not run.path.exists():
        raise SparseseqError(f"run folder {run.path} does not exist: give a folder written by "
                             f"train-lm or train-pos")
    if not run.path.is_dir():
        raise SparseseqError(f"{run.path} is a file, not a run folder: give a folder written by "
                             f"train-lm or train-pos")
    if not run.has(files.best):
        if not run.has(CONFIG):
            raise SparseseqError(f"{run.path} is not a run folder (no {CONFIG}, no {files.best}): "
                                 f"give a folder written by train-lm or train-pos")
        if finetuned:
            raise SparseseqError(f"{run.path} has no finetuned model ({files.best}): drop "
                                 f"--finetuned, or run `sparseseq finetune-lm {run.path}` first")
        raise SparseseqError(f"{run.path} has no {files.best} yet: the run has not finished an "
                             f"epoch; wait for one, or resume it")
    ckpt = run.load(files.best)
    return run, ckpt, _note(run)


def _note(run: RunFolder) -> Optional[str]:
    results = run.read_results()
    if results is None:
        return (f"{run.path} is an unfinished run (no {run.files.results}): using its best model "
                f"so far, {run.files.best}")
    if results.get("status") == "diverged":
        return f"{run.path}: the run diverged; using the best model saved before, {run.files.best}"
    return None


def check_task(ckpt: dict[str, Any], path: Path, task: Optional[str]) -> str:
    """The checkpoint's task, which must be ``task`` when one is asked for."""
    found = ckpt.get("task")
    if found not in TRAINED_BY:
        raise SparseseqError(f"{path}: its checkpoint names no task (lm or pos): retrain with this version")
    if task is not None and found != task:
        what = "a tagger" if found == "pos" else "a language model"
        raise SparseseqError(f"{path} is a {TRAINED_BY[found]} run ({what}): this needs a "
                             f"{TRAINED_BY[task]} run")
    return found
