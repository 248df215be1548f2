"""What a training phase carries between epochs, and the one checkpoint schema of both tasks.

Every phase keeps a :class:`RunState` (the language model's and the tagger's add their own
fields) that is saved whole in the phase's last checkpoint, next to the model, the
optimizer and every random generator, so a resumed run repeats nothing and loses nothing.
A checkpoint is plain data and tensors (``torch.load(weights_only=True)``):

    format, task, phase, config, vocab, [tags], model          (best and last)
    optimizer, state, rng, [rank_rngs], <the task's extras>     (last only)

docs/formats.md lists the task extras.
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch

from sparseseq_cli.config import Config, config_to_dict
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.tasks import Phase


@dataclass
class RunState:
    """Between-epoch bookkeeping common to every phase."""
    epoch: int = 0                # last completed epoch
    best_epoch: int = 0
    elapsed_s: float = 0.0        # wall time of the earlier processes of this phase
    train_s: float = 0.0          # time spent in training passes (for tokens/s)
    train_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LMState(RunState):
    history: list[float] = field(default_factory=list)  # validation losses before averaging
    best_val_loss: float = math.inf      # (train loss for overfit)
    asgd_prev_loss: float = math.inf
    asgd_worse: int = 0                  # averaged epochs in a row worse than the previous
    stopped: bool = False                # a stop rule fired: only the final test is left
    memorized_epoch: Optional[int] = None
    last: dict[str, float] = field(default_factory=dict)  # the last epoch's metrics


@dataclass
class TaggerState(RunState):
    best_dev_acc: float = -1.0


class Clock:
    """A phase's wall time over all the processes that worked on it (resumes included)."""

    def __init__(self, earlier_s: float = 0.0):
        self.earlier_s, self.started = earlier_s, time.perf_counter()

    def elapsed(self) -> float:
        return self.earlier_s + time.perf_counter() - self.started


def model_record(phase: Phase, cfg: Config, vocab: list[str], model: torch.nn.Module,
                 tags: Optional[list[str]] = None) -> dict[str, Any]:
    """What every checkpoint of ``phase`` holds: enough to rebuild and use the model."""
    record = {"task": phase.task.value, "phase": phase.value, "config": config_to_dict(cfg),
              "vocab": list(vocab), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if tags is not None:
        record["tags"] = list(tags)
    return record


def restore_state(kind: type[RunState], saved: dict[str, Any], where: str) -> RunState:
    try:
        return kind(**saved)
    except TypeError:
        raise SparseseqError(f"checkpoint {where} holds another kind of training state: start "
                             f"over with --force") from None


# ---- random number generators --------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every torch generator a training step draws from, to be restored on resume."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- Ctrl-C ----------------------------------------------------------------------------------
class StopRequest:
    """Turns the first Ctrl-C into a request the loop checks between steps (so it can save a
    resumable checkpoint at a clean point); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class TrainingInterrupted(SparseseqError):
    """Ctrl-C: a resumable checkpoint was saved; exit status 130 as for SIGINT. Not an
    error: the message says how to continue."""
    exit_code = 130
    prefix = ""
