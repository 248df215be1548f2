"""Training for both tasks: one entry point per command, each returning its record.

    train(phase, options)   train-lm, finetune-lm, overfit, train-pos (also under torchrun)
    resolve_run(task, options)   the configuration and run folder a command would use
    evaluate_run(...)       eval-lm

The modules: ``start`` (configuration, run folder, the resume rule, results.json),
``state`` (loop state, checkpoint schema, generators, Ctrl-C), the language model's
``lm_loop`` / ``lm_checkpoints`` / ``lm_start`` / ``lm_phases`` / ``lm_eval``, the tagger's
``tagging_loop`` / ``tagging``, ``averaging`` (NT-ASGD) and ``distributed`` (torchrun, devices).
"""
from __future__ import annotations

from typing import Any, Optional

from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.distributed import data_parallel
from sparseseq_cli.training.lm_eval import eval_lm as evaluate_run
from sparseseq_cli.training.lm_phases import finetune_lm, overfit, train_lm
from sparseseq_cli.training.options import TrainOptions
from sparseseq_cli.training.precision import check_precision
from sparseseq_cli.training.start import resolve_run
from sparseseq_cli.training.tensorboard import require_tensorboard
from sparseseq_cli.training.tagging import train_pos

__all__ = ["TrainOptions", "evaluate_run", "resolve_run", "train"]

_NEW_MODEL = {Phase.TRAIN_LM: train_lm, Phase.OVERFIT: overfit, Phase.TRAIN_POS: train_pos}


def train(phase: Phase, options: TrainOptions) -> Optional[dict[str, Any]]:
    """Run ``phase`` as ``options`` say, in every process under torchrun; returns the
    results.json record on rank 0 (None on the other ranks)."""
    common = dict(resume=options.resume, force=options.force, quiet=options.quiet)
    with data_parallel(options.device) as world:
        if phase is Phase.FINETUNE_LM:
            record = finetune_lm(options.save, device=world.device, overrides=options.sets,
                                 flags=options.flags(), world=world, **common)
        else:
            cfg, path = world.on_main(lambda: resolve_run(phase.task, options))
            check_precision(cfg.train.precision, world.device)   # before the run folder is touched
            if cfg.log.tensorboard:
                require_tensorboard()
            record = _NEW_MODEL[phase](cfg, path, device=world.device, world=world, **common)
    return record if world.is_main else None
