"""The one typed signature shared by the training commands (train-lm, overfit, train-pos)."""
from __future__ import annotations

from typing import Callable

from sparseseq_cli.cli.app import app
from sparseseq_cli.files import to_json
from sparseseq_cli.cli.options import (ConfigOpt, DataOpt, DeviceOpt, EpochsOpt, ForceOpt, JsonOpt,
                                       MaxBatchesOpt, PrecisionOpt, PresetOpt, PrintConfigOpt, QuietOpt,
                                       ResumeOpt, SaveOpt, SeedOpt, SetOpt, TensorboardOpt, ThreadsOpt)
from sparseseq_cli.devices import using_threads
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.options import TrainOptions


def print_record(record: dict | None, summary: Callable[[dict], str], *, as_json: bool, quiet: bool) -> None:
    """stdout: the record as JSON, or its one-line summary (nothing on the other ranks)."""
    if record is None:
        return
    if as_json:
        print(to_json(record, indent=2))
    elif not quiet:
        print(summary(record))


def register(name: str, phase: Phase, doc: str, summary: Callable[[dict], str]) -> None:
    """Add the command ``name`` that runs ``phase`` and prints ``summary`` of its results."""
    def command(preset: PresetOpt = None, config: ConfigOpt = None, sets: SetOpt = None,
                seed: SeedOpt = None, epochs: EpochsOpt = None, data: DataOpt = None,
                max_batches: MaxBatchesOpt = None, save: SaveOpt = None, precision: PrecisionOpt = None,
                tensorboard: TensorboardOpt = False, device: DeviceOpt = "auto", threads: ThreadsOpt = None,
                resume: ResumeOpt = False, force: ForceOpt = False, print_config: PrintConfigOpt = False,
                json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
        from sparseseq_cli.config import dump_config
        from sparseseq_cli.training import resolve_run, train

        options = TrainOptions(preset=preset, config_file=config, sets=list(sets or ()), seed=seed,
                               epochs=epochs, data=data, max_batches=max_batches, save=save,
                               precision=precision and precision.value, tensorboard=tensorboard or None,
                               device=device, resume=resume, force=force, quiet=quiet or json_out)
        if print_config:
            print(dump_config(resolve_run(phase.task, options)[0]), end="")
            return
        with using_threads(threads):
            record = train(phase, options)
        print_record(record, summary, as_json=json_out, quiet=quiet)

    command.__doc__ = doc
    app.command(name)(command)
