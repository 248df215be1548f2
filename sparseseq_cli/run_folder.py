"""The run folder: what a training run leaves on disk, how it is written, and how it is read.

    config.yaml       the resolved configuration, written before the first step
    vocab.txt         the vocabulary in model order
    log.txt           the original code's log lines (appended by every phase)
    metrics.jsonl     one JSON object per epoch
    results.json      final metrics; written only when the phase finished, so a folder with
                      config.yaml and no results.json is an unfinished (or crashed) run
    checkpoint_last.pt / checkpoint_best.pt

Finetuning is a second phase in the same folder with its own files (``*_finetune*``), so it
never overwrites the trained model. Every file that is replaced is written to a temporary
file and renamed, so a kill leaves either the old or the new version, never half of one.
Checkpoints hold tensors and plain data only and load with ``torch.load(weights_only=True)``;
docs/formats.md describes every file. Training writes through :class:`RunFolder`, ``report``
reads through it: no file name is written anywhere else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import torch

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import (FileLock, atomic_write, atomic_write_text, read_json_object, read_text,
                                 read_yaml, to_json)

CHECKPOINT_FORMAT = 2
CONFIG, VOCAB, LOG = "config.yaml", "vocab.txt", "log.txt"
# MARKER says the folder is a run folder (written when a run starts in it, so --save never
# adopts a folder of someone else's files); LOCK is held by the process that trains in it.
MARKER, LOCK = ".sparseseq-run", ".sparseseq-run.lock"


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


class RunFolder:
    """One run folder and one phase's files in it."""

    def __init__(self, path: str | Path, files: RunFiles = TRAIN):
        self.path = Path(path)
        self.files = files
        self.resuming = False  # set by open(): continue from the phase's last checkpoint
        # False on the data-parallel ranks other than 0: they share rank 0's folder and
        # leave every write to it
        self.writer = True
        self._lock = FileLock(self.path / LOCK)

    # ---- starting ------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, resume: bool, force: bool,
             files: RunFiles = TRAIN) -> "RunFolder":
        """Lock the folder for this process and apply the start rules; ``run.resuming``
        tells which case. The lock is held until :meth:`release` (or the process dies).

        - a folder that is not empty and not a run folder (no marker) is never adopted;
        - a folder another process holds: an error naming that process;
        - nothing there, or a run that never reached its first checkpoint: a fresh start;
        - a finished phase (its results file exists): an error unless ``--force``; a
          diverged one says where it diverged;
        - an unfinished phase (a last checkpoint): an error unless ``--resume`` (continue)
          or ``--force``;
        - ``--force`` deletes the phase's files (for training also the finetuning files,
          which would describe another model), and nothing else, and starts afresh.
        """
        if resume and force:
            raise SparseseqError("--resume and --force contradict each other: give one of them")
        run = cls(path, files)
        if run.path.exists() and not run.path.is_dir():
            raise SparseseqError(f"{run.path} is a file, not a run folder: choose another --save")
        # (a lock file alone is a run starting this moment, whose lock answers below)
        if run.path.exists() and not run.is_run_folder() and any(p.name != LOCK for p in run.path.iterdir()):
            raise SparseseqError(f"{run.path} holds other files and is not a sparseseq run folder "
                                 f"(no {MARKER}): choose a new or empty folder for --save")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SparseseqError(f"cannot create the run folder {run.path} ({err.strerror}): "
                                 f"choose a writable --save") from None
        run._lock.acquire(f"run folder {run.path}")
        try:
            run._apply_start_rules(resume, force)
            if run.writer and not run.is_run_folder():
                atomic_write_text(run.path / MARKER, to_json({"tool": "sparseseq"}) + "\n")
        except BaseException:
            run.release()
            raise
        return run

    def _apply_start_rules(self, resume: bool, force: bool) -> None:
        files, started = self.files, self.started()
        if self.finished() and not force:
            results = self.read_results() or {}
            if results.get("status") == "diverged":
                raise SparseseqError(f"{self.path}: {diverged_line(results)}; lower train.lr and "
                                     f"start over with --force")
            if resume:
                raise SparseseqError(f"{self.path} holds a finished {files.phase} run "
                                     f"({files.results}): nothing to resume; --force starts over")
            again = ("--force finetunes it again (the trained model stays)" if files is FINETUNE
                     else "pass --force to overwrite it, or --save another folder")
            raise SparseseqError(f"{self.path} already holds a finished {files.phase} run: {again}")
        if started and not (resume or force):
            raise SparseseqError(f"{self.path} holds an unfinished {files.phase} run (no "
                                 f"{files.results}): pass --resume to continue it, or --force "
                                 f"to start over")
        if resume and not started and not (self.path / CONFIG).exists():
            raise SparseseqError(f"{self.path} holds no {files.phase} run to resume: drop --resume "
                                 f"to start one")
        if force or not started:
            # a run that never reached its first checkpoint left nothing worth keeping
            self.clear()
        self.resuming = resume and started

    def is_run_folder(self) -> bool:
        return (self.path / MARKER).is_file()

    def started(self) -> bool:
        """Whether the phase reached its first checkpoint (before that, nothing is lost by
        starting over, so a failed start never blocks the corrected rerun)."""
        return (self.path / self.files.last).exists() and not self.finished()

    def finished(self) -> bool:
        return (self.path / self.files.results).exists()

    def clear(self) -> None:
        names = list(self.files.names)
        if self.files is TRAIN:
            names += [CONFIG, VOCAB, LOG, *FINETUNE.names]
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    def release(self) -> None:
        """Let other processes use the folder again."""
        self._lock.release()

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __getstate__(self) -> dict:
        # the other torchrun ranks get a copy without the lock, which stays with rank 0
        return {**self.__dict__, "_lock": FileLock(self.path / LOCK)}

    # ---- config and vocabulary -----------------------------------------------------
    def write_config(self, text: str) -> None:
        """``text``: the resolved configuration as YAML (``config.dump_config``)."""
        if self.writer:
            atomic_write_text(self.path / CONFIG, text)

    def config_path(self) -> Path:
        if not (self.path / CONFIG).exists():
            raise SparseseqError(f"{self.path} has no {CONFIG}: give a run folder made by sparseseq")
        return self.path / CONFIG

    def read_config_dict(self) -> dict:
        """The saved configuration as plain data, unvalidated (``report`` reads old runs too)."""
        path = self.config_path()
        data = read_yaml(path, str(path), "rerun that run")
        if not isinstance(data, dict):
            raise SparseseqError(f"{path}: the saved config is not a mapping; rerun that run")
        return data

    def write_vocab(self, words: Iterable[str]) -> None:
        if self.writer:
            atomic_write_text(self.path / VOCAB, "".join(w + "\n" for w in words))

    def vocab_path(self) -> Optional[Path]:
        path = self.path / VOCAB
        return path if path.exists() else None

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
            f.write(to_json(record) + "\n")

    def metrics_started(self) -> bool:
        return (self.path / self.files.metrics).is_file()

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records (none when the file does not exist)."""
        path = self.path / self.files.metrics
        if not path.is_file():
            return []
        records = []
        text = read_text(path, str(path), "remove the file or rerun that run")
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                if number == len(lines) and not text.endswith("\n"):
                    break   # a line cut short by a kill: its epoch was never checkpointed
                raise SparseseqError(f"{path}:{number} is not a JSON object ({err.msg}); "
                                     f"remove that line") from None
            if not isinstance(record, dict) or "epoch" not in record:
                raise SparseseqError(f"{path}:{number} has no epoch: not a sparseseq metrics file")
            records.append(record)
        return records

    def trim_metrics(self, last_epoch: int) -> None:
        """Drop epochs after ``last_epoch`` (written before a kill, but not checkpointed)."""
        if not self.writer:
            return
        kept = [r for r in self.read_metrics() if r["epoch"] <= last_epoch]
        atomic_write_text(self.path / self.files.metrics, "".join(to_json(r) + "\n" for r in kept))

    def write_results(self, record: dict[str, Any]) -> None:
        if self.writer:
            atomic_write_text(self.path / self.files.results, to_json(record, indent=2) + "\n")

    def read_results(self) -> Optional[dict[str, Any]]:
        """The phase's results, None while it has not finished."""
        path = self.path / self.files.results
        return read_json_object(path) if path.is_file() else None

    # ---- checkpoints ---------------------------------------------------------------
    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def save(self, name: str, state: dict[str, Any]) -> None:
        if self.writer:
            state = {"format": CHECKPOINT_FORMAT, **state}
            atomic_write(self.path / name, lambda p: torch.save(state, p))

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


def diverged_line(results: dict) -> str:
    """Where a diverged run's loss stopped being finite, as results.json records it."""
    d = results.get("diverged") or {}
    at = f" at batch {d['batch']}" if d.get("batch") is not None else ""
    return (f"the run diverged in epoch {d.get('epoch', '?')}{at} (its {d.get('where', 'training')} loss "
            f"overflowed: inf, NaN, or a perplexity beyond any float)")
