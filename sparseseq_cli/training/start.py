"""How a training phase starts, for both tasks: its configuration, its run folder, the
resume rule, and the results record it ends with.

The resume rule: ``--resume`` continues a run with the configuration it saved; only the
keys in :data:`MAY_CHANGE_ON_RESUME` may differ (more or fewer epochs, another log
interval). Anything else would make the continued run another experiment than the one
begun, so it is refused with a line naming the key.
"""
from __future__ import annotations

import platform
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from sparseseq_cli.config import SECTIONS, Config, config_from_dict, config_to_dict, dump_config, load_config, run_name
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_folder import CONFIG, TRAIN, RunFiles, RunFolder
from sparseseq_cli.tasks import Phase, Task
from sparseseq_cli.training.distributed import World
from sparseseq_cli.training.options import TrainOptions

MAY_CHANGE_ON_RESUME = ("train.epochs", "train.log_interval", "log.tensorboard")


def resolve_run(task: Task, options: TrainOptions) -> tuple[Config, Path]:
    """The configuration and run folder of a training command. ``--resume --save DIR``
    without a preset or config file continues DIR with its own saved config (``--set`` and
    the dedicated flags still apply on top, within the resume rule)."""
    if options.resume and options.save and not (options.preset or options.config_file):
        saved = Path(options.save) / CONFIG
        if saved.exists():
            cfg = load_config(config_file=saved, overrides=options.sets, flags=options.flags(), task=task)
            return cfg, Path(options.save)
    if not (options.preset or options.config_file):
        raise SparseseqError("no configuration given: use --preset NAME (see `sparseseq presets`) "
                             "or --config FILE")
    cfg = load_config(options.preset, options.config_file, options.sets, options.flags(), task=task)
    return cfg, Path(options.save) if options.save else Path("runs") / run_name(cfg)


def check_resumable(saved: Config, given: Config, path: Path) -> None:
    """The resume rule (module docstring)."""
    old, new = config_to_dict(saved), config_to_dict(given)
    for section in SECTIONS:
        for key, value in old[section].items():
            if f"{section}.{key}" not in MAY_CHANGE_ON_RESUME and new[section][key] != value:
                raise SparseseqError(
                    f"--resume continues {path} with its saved config, but {section}.{key} differs "
                    f"(saved {value!r}, given {new[section][key]!r}): drop the change (only "
                    f"{', '.join(MAY_CHANGE_ON_RESUME)} may change), or --force to start over")


def saved_config(run: RunFolder) -> Config:
    """The configuration a run continues with: its phase's newest checkpoint's, else config.yaml's."""
    for name in (run.files.last, run.files.best):
        if run.has(name):
            return config_from_dict(run.load(name)["config"], str(run.path / name))
    return load_config(config_file=run.config_path())


def open_phase(cfg: Config, path: Path, *, resume: bool, force: bool, world: World,
               files: RunFiles = TRAIN, check: Optional[Callable[[RunFolder], None]] = None) -> RunFolder:
    """Rank 0 applies the start rules (and the resume rule), and writes config.yaml for a
    new training run; the other ranks get a copy of the run that leaves writing to it."""
    def open_run() -> RunFolder:
        run = RunFolder.open(path, resume=resume, force=force, files=files)
        with released_on_error(run):
            if run.resuming:
                check_resumable(saved_config(run), cfg, run.path)
            elif files is TRAIN:
                run.write_config(dump_config(cfg))
            if check is not None:
                check(run)
        return run

    run = world.on_main(open_run)
    run.writer = world.is_main
    return run


@contextmanager
def released_on_error(run: RunFolder) -> Iterator[None]:
    """Let go of the run folder's lock when starting the phase fails (a bad resume, a model
    too large for memory), so the corrected rerun can take it at once."""
    try:
        yield
    except BaseException:
        run.release()
        raise


# ---- results.json ------------------------------------------------------------------------
def git_commit() -> str | None:
    """The commit of the sparseseq source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def env_info(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": name, "threads": torch.get_num_threads(),
            "git_commit": git_commit()}


def results_record(*, phase: Phase, cfg: Config, params: dict[str, int], metrics: dict[str, Any],
                   epochs: int, wall_time_s: float, train_tokens: int, train_s: float,
                   device: torch.device, diverged: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The results.json schema shared by every phase; ``diverged`` (epoch, batch, where)
    marks a run stopped because its loss was no longer finite."""
    status = {"status": "finished"} if diverged is None else {"status": "diverged", "diverged": diverged}
    return {"task": phase.task.value, "phase": phase.value, **status, "preset": cfg.preset, "seed": cfg.train.seed,
            "precision": cfg.train.precision.value,
            "config": config_to_dict(cfg), "params": params, "metrics": metrics,
            "epochs": epochs, "wall_time_s": round(wall_time_s, 3),
            "tokens_per_s": round(train_tokens / train_s, 1) if train_s > 0 else None,
            "env": env_info(device)}
