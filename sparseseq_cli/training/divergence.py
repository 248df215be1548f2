"""Stopping a run whose loss is no longer a number.

A diverged run (a loss of inf or NaN, or one so large that its perplexity overflows a float,
usually from too high a learning rate) would train on
garbage, save it as its best model and crash at the end. Instead the run stops at once with
one line saying where (epoch, batch) and what to try, keeps its last good checkpoint, and
records ``"status": "diverged"`` in results.json, so ``report`` shows it and ``--resume``
explains it.

Reading a loss on the host waits for the device, so the step's flag is kept on the device
and the flags are read every :data:`CHECK_EVERY` batches (and at the end of a pass): a
diverged run stops at most that many batches late, naming the first bad batch, and nothing
computed after it is ever saved.
"""
from __future__ import annotations

from typing import NoReturn, Optional

import torch

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import MAX_LOSS
from sparseseq_cli.run_folder import RunFolder, diverged_line
from sparseseq_cli.training.distributed import AGREE_EVERY, World

CHECK_EVERY = AGREE_EVERY   # the data-parallel ranks vote on it when they vote on Ctrl-C


class TrainingDiverged(SparseseqError):
    """The loss stopped being finite: exit status 1 (the run failed; the input was fine)."""
    exit_code = 1


def stop_diverged(run: RunFolder, record: dict) -> NoReturn:
    """Write the diverged run's results (status "diverged") and stop with one line."""
    run.write_results(record)
    lr = record["diverged"]["lr"]
    raise TrainingDiverged(f"{diverged_line(record)}: stopped; the last good checkpoints stay in "
                           f"{run.path}. Lower train.lr (now {lr:g}) and start over with --force")


class NonFiniteWatch:
    """Per-batch flags of non-finite losses, read without a device sync per step."""

    def __init__(self, device: torch.device, world: World, start: int = 0):
        self.flags = torch.zeros(CHECK_EVERY, dtype=torch.bool, device=device)
        self.world = world
        self.checked = start      # batches of the pass already checked (a resumed pass's start)

    def note(self, batch: int, loss: torch.Tensor) -> None:
        """Record the loss of ``batch`` (0-based within the pass; never more than
        CHECK_EVERY batches after the last check)."""
        loss = loss.detach()
        self.flags[batch - self.checked] = ~torch.isfinite(loss) | (loss >= MAX_LOSS)

    def first_bad(self, done: int, end: bool = False) -> Optional[int]:
        """After ``done`` batches: the 1-based number of the first non-finite one, if any,
        checked every CHECK_EVERY batches and at the end of the pass (``end``)."""
        if done == self.checked or not (end or done % CHECK_EVERY == 0):
            return None
        window = self.flags[:done - self.checked]
        bad = window.nonzero()
        first = self.checked + int(bad[0]) + 1 if len(bad) else None
        self.checked = done
        self.flags.zero_()
        if self.world.any(first is not None):
            return first if first is not None else done   # another rank's batch in this window
        return None
