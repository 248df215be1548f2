"""The language model's last checkpoint: saving it (with a mid-epoch cursor after Ctrl-C)
and restoring a session from it, also across another number of torchrun ranks."""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_folder import RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.averaging import ParameterAverage
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.lm_loop import Session
from sparseseq_cli.training.state import Clock, LMState, model_record, restore_state


def save_last(run: RunFolder, s: Session, phase: Phase, vocab: list[str],
              cursor: Optional[dict] = None) -> None:
    """Every rank takes part (the cursor and generators are gathered); rank 0 writes."""
    cursor = _whole_batch_cursor(s.world, cursor)
    rngs = s.world.rng_record()
    if not run.writer:
        return
    state = dataclasses.replace(s.state, elapsed_s=s.clock.elapsed())
    run.save(run.files.last, {
        **model_record(phase, s.cfg, vocab, s.model),
        "optimizer": s.optimizer.state_dict(), "state": state.as_dict(), **rngs,
        "averaging": None if s.average is None else s.average.state_dict(),
        "seq_rng": s.seq_rng.getstate(), "scaler": s.amp.state_dict(), "cursor": cursor})


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


def restore(run: RunFolder, s: Session) -> Optional[dict]:
    """Load the phase's last checkpoint into the session; returns a mid-epoch cursor if any."""
    ckpt = s.world.on_main(lambda: run.load(run.files.last))
    try:
        s.model.load_state_dict(ckpt["model"])
        s.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt["averaging"] is not None:
            s.average = ParameterAverage(s.model.parameters())
            s.average.load_state_dict(ckpt["averaging"])
        s.amp.load_state_dict(ckpt.get("scaler"))
        version, internal, gauss = ckpt["seq_rng"]
        s.seq_rng.setstate((version, tuple(internal), gauss))
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise SparseseqError(f"checkpoint {run.path / run.files.last} does not fit this run "
                             f"({err.__class__.__name__}): start over with --force") from None
    s.state = restore_state(LMState, ckpt["state"], str(run.path / run.files.last))
    s.world.restore_rng(ckpt, s.cfg.train.seed)
    s.clock = Clock(s.state.elapsed_s)
    run.trim_metrics(s.state.epoch)
    return _rank_cursor(s.world, ckpt["cursor"])
