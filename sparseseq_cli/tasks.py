"""The two tasks and the phases of training that run them: one name for each, everywhere.

A *task* is what a model does (``lm``: a language model, ``pos``: a part-of-speech tagger):
the ``task`` key of a configuration, a checkpoint and results.json. A *phase* is one
training command's work on a run folder, named as the command: results.json, checkpoints
and ``report`` say which phase wrote them.
"""
from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    LM = "lm"
    POS = "pos"


class Phase(str, Enum):
    TRAIN_LM = "train-lm"
    FINETUNE_LM = "finetune-lm"
    OVERFIT = "overfit"
    TRAIN_POS = "train-pos"

    @property
    def task(self) -> Task:
        return Task.POS if self is Phase.TRAIN_POS else Task.LM
