"""Run directories: what a run leaves on disk, and the rules for starting, resuming, overwriting.

    config.yaml       the resolved configuration, written before the first step
    vocab.txt         the vocabulary in model order
    log.txt           the original's log lines (appended by every phase)
    metrics.jsonl     one JSON object per epoch
    results.json      final metrics; written only when the run finished, so a folder with
                      config.yaml and no results.json is an unfinished (or crashed) run
    checkpoint_last.pt / checkpoint_best.pt

Finetuning is a second phase in the same folder with its own files (``*_finetune*``), so it
never overwrites the trained model. Every file that is replaced is written to a temporary
file and renamed, so a kill leaves either the old or the new version, never half of one.
Checkpoints hold tensors and plain data only and load with ``torch.load(weights_only=True)``.
This module knows nothing about the task (language model or tagger).
"""
from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from sparseseq_cli.config import (Config, config_from_dict, config_to_dict, dump_config, load_config,
                                  run_name)
from sparseseq_cli.errors import SparseseqError

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class RunFiles:
    """The files of one phase of a run."""
    phase: str
    metrics: str
    results: str
    last: str
    best: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.metrics, self.results, self.last, self.best)


TRAIN = RunFiles("training", "metrics.jsonl", "results.json", "checkpoint_last.pt", "checkpoint_best.pt")
FINETUNE = RunFiles("finetuning", "metrics_finetune.jsonl", "results_finetune.json",
                    "checkpoint_finetune_last.pt", "checkpoint_finetune_best.pt")
CONFIG, VOCAB, LOG = "config.yaml", "vocab.txt", "log.txt"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions any new file gets
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """One run folder and one phase's files in it."""

    def __init__(self, path: str | Path, files: RunFiles = TRAIN):
        self.path = Path(path)
        self.files = files
        self.resuming = False  # set by open(): continue from the phase's last checkpoint
        # False on the data-parallel ranks other than 0: they share rank 0's folder and
        # leave every write to it
        self.writer = True

    # ---- starting ------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, resume: bool, force: bool,
             files: RunFiles = TRAIN) -> "RunDir":
        """Apply the start rules and return the run; ``run.resuming`` tells which case.

        - nothing there: a fresh start (``--resume`` is then an error: nothing to resume);
        - a finished phase (its results file exists): an error unless ``--force``;
        - an unfinished phase: an error unless ``--resume`` (continue) or ``--force``;
        - ``--force`` deletes the phase's files (for training also the finetuning files,
          which would describe another model) and starts afresh.
        """
        if resume and force:
            raise SparseseqError("--resume and --force contradict each other: give one of them")
        run = cls(path, files)
        if run.path.exists() and not run.path.is_dir():
            raise SparseseqError(f"{run.path} is a file, not a run folder: choose another --save")
        started = run.started()
        if run.finished() and not force:
            if resume:
                raise SparseseqError(f"{run.path} holds a finished {files.phase} run "
                                     f"({files.results}): nothing to resume; --force starts over")
            raise SparseseqError(f"{run.path} already holds a finished {files.phase} run: pass "
                                 f"--force to overwrite it, or --save another folder")
        if started and not (resume or force):
            raise SparseseqError(f"{run.path} holds an unfinished {files.phase} run (no "
                                 f"{files.results}): pass --resume to continue it, or --force "
                                 f"to start over")
        if resume and not started:
            raise SparseseqError(f"{run.path} holds no {files.phase} run to resume: drop --resume "
                                 f"to start one")
        if force:
            run.clear()
        run.path.mkdir(parents=True, exist_ok=True)
        run.resuming = resume
        return run

    def started(self) -> bool:
        if self.files is TRAIN:
            return (self.path / CONFIG).exists()
        return any((self.path / name).exists() for name in self.files.names)

    def finished(self) -> bool:
        return (self.path / self.files.results).exists()

    def clear(self) -> None:
        names = list(self.files.names)
        if self.files is TRAIN:
            names += [CONFIG, VOCAB, LOG, *FINETUNE.names]
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    # ---- config and vocabulary -----------------------------------------------------
    def write_config(self, cfg: Config) -> None:
        if not self.writer:
            return
        text = dump_config(cfg)
        _atomic_write(self.path / CONFIG, lambda p: p.write_text(text, encoding="utf-8"))

    def read_config(self) -> Config:
        if not (self.path / CONFIG).exists():
            raise SparseseqError(f"{self.path} has no {CONFIG}: give a run folder made by sparseseq")
        return load_config(config_file=self.path / CONFIG)

    def write_vocab(self, words: Iterable[str]) -> None:
        if not self.writer:
            return
        text = "".join(w + "\n" for w in words)
        _atomic_write(self.path / VOCAB, lambda p: p.write_text(text, encoding="utf-8"))

    # ---- logs and metrics ----------------------------------------------------------
    def log(self, line: str) -> None:
        if not self.writer:
            return
        with open(self.path / LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        with open(self.path / self.files.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / self.files.metrics
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def trim_metrics(self, last_epoch: int) -> None:
        """Drop epochs after ``last_epoch`` (written before a kill, but not checkpointed)."""
        if not self.writer:
            return
        kept = [r for r in self.read_metrics() if r["epoch"] <= last_epoch]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        _atomic_write(self.path / self.files.metrics, lambda p: p.write_text(text, encoding="utf-8"))

    def write_results(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        text = json.dumps(record, indent=2) + "\n"
        _atomic_write(self.path / self.files.results, lambda p: p.write_text(text, encoding="utf-8"))

    def read_results(self) -> dict[str, Any]:
        path = self.path / self.files.results
        if not path.exists():
            raise SparseseqError(f"{self.path} has no {self.files.results}: the {self.files.phase} "
                                 f"run has not finished (resume it with --resume)")
        return json.loads(path.read_text(encoding="utf-8"))

    # ---- checkpoints ---------------------------------------------------------------
    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def save(self, name: str, state: dict[str, Any]) -> None:
        if not self.writer:
            return
        state = {"format": CHECKPOINT_FORMAT, **state}
        _atomic_write(self.path / name, lambda p: torch.save(state, p))

    def load(self, name: str) -> dict[str, Any]:
        path = self.path / name
        if not path.exists():
            raise SparseseqError(f"{path} does not exist: the run has no such checkpoint yet")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many kinds for a damaged file
            raise SparseseqError(f"checkpoint {path} is corrupt or not a sparseseq checkpoint "
                                 f"({err.__class__.__name__}): delete it and retrain, or "
                                 f"--resume from an earlier copy") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise SparseseqError(f"checkpoint {path} is not a sparseseq checkpoint of format "
                                 f"{CHECKPOINT_FORMAT}: retrain with this version")
        return state


def config_of(state: dict[str, Any], where: str) -> Config:
    """The configuration a checkpoint carries."""
    return config_from_dict(state["config"], where)


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
            "cuda": torch.version.cuda, "device": name, "git_commit": git_commit()}


def results_record(*, task: str, cfg: Config, params: dict[str, int], metrics: dict[str, Any],
                   epochs: int, wall_time_s: float, tokens_per_s: float | None,
                   device: torch.device) -> dict[str, Any]:
    """The results.json schema shared by every task."""
    return {"task": task, "preset": cfg.preset, "seed": cfg.train.seed,
            "config": config_to_dict(cfg), "params": params, "metrics": metrics,
            "epochs": epochs, "wall_time_s": round(wall_time_s, 3),
            "tokens_per_s": None if tokens_per_s is None else round(tokens_per_s, 1),
            "env": env_info(device)}


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


def resolve_run(task: str, preset: str | None, config_file: str | Path | None, overrides: Iterable[str],
                flags: dict[str, Any], save: str | Path | None, resume: bool) -> tuple[Config, Path]:
    """The configuration and run folder of a training command (``task`` lm or pos).
    ``--resume --save DIR`` with no other source continues DIR with its own saved config."""
    overrides = list(overrides)
    given = preset or config_file or overrides or any(v is not None for v in flags.values())
    if resume and save and not given:
        return load_config(config_file=Path(save) / CONFIG, task=task), Path(save)
    if not (preset or config_file):
        raise SparseseqError("no configuration given: use --preset NAME (see `sparseseq presets`) "
                             "or --config FILE")
    cfg = load_config(preset, config_file, overrides, flags, task=task)
    return cfg, Path(save) if save else Path("runs") / run_name(cfg)
