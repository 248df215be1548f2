"""Options shared by several commands, declared once (``Annotated`` aliases) and reused.

Every option that sets a config key defaults to None ("not given"): the defaults live in
the config dataclasses only, so a flag never silently resets a preset's value.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sparseseq_cli.config.schema import Precision

DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when available), cpu, cuda or cuda:N; under "
                                              "torchrun, auto and cuda mean each process's own GPU.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")]

PresetOpt = Annotated[Optional[str], typer.Option(
    help="Preset name (see `sparseseq presets`).", show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", help="A YAML config (any preset-shaped file, e.g. a run's config.yaml), applied "
                     "after the preset.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a key: nhid=1725 or model.nhid=1725; repeatable, applied left to right.",
    show_default=False)]
SeedOpt = Annotated[Optional[int], typer.Option(help="train.seed (default: the preset's).", show_default=False)]
EpochsOpt = Annotated[Optional[int], typer.Option(help="train.epochs (default: the preset's).", show_default=False)]
DataOpt = Annotated[Optional[str], typer.Option(
    help="data.path: a corpus folder or builtin:toy (default: the preset's).", show_default=False)]
MaxBatchesOpt = Annotated[Optional[int], typer.Option(
    help="train.max_batches: at most N batches per training/evaluation pass (smoke runs, sizing).",
    show_default=False)]
SaveOpt = Annotated[Optional[Path], typer.Option(
    help="Run folder (default: runs/<preset>-seed<seed>).", show_default=False)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the unfinished run in the run folder.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Delete the run folder's run files and start over.")]
PrecisionOpt = Annotated[Optional[Precision], typer.Option(
    help="train.precision: fp32, bf16 (autocast; CPU or GPU) or fp16 (autocast with a gradient "
         "scaler; CUDA only). Weights, averaging and checkpoints stay fp32. Default: the preset's "
         "(fp32).", show_default=False)]
TensorboardOpt = Annotated[bool, typer.Option(
    "--tensorboard", help="log.tensorboard: also write the metrics as TensorBoard events to "
                          "RUN/tensorboard/ (needs the tensorboard extra of the package).")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    help="CPU threads torch may use (default: torch's choice, or OMP_NUM_THREADS when set). Jobs "
         "side by side: threads per job x jobs <= cores.", show_default=False)]
PrintConfigOpt = Annotated[bool, typer.Option(
    "--print-config", help="Print the resolved configuration as YAML and exit.")]
RunFolderArg = Annotated[Path, typer.Argument(help="A run folder written by train-lm.", metavar="RUN_FOLDER",
                                                show_default=False)]
