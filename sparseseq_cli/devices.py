"""``--device auto|cpu|cuda|cuda:N`` (or a ``load_run(device=...)``) to a torch.device.

Training (each torchrun rank's device), the trained-model API and the CLI's measuring
commands all choose a device, so the one rule lives here, below all of them."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch

from sparseseq_cli.errors import SparseseqError


def resolve_device(spec: "str | torch.device" = "auto") -> torch.device:
    """``--device auto|cpu|cuda|cuda:N`` to a torch.device (auto: CUDA when available)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise SparseseqError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SparseseqError(f"device {spec!r} asked for, but no CUDA GPU is available: "
                                 f"use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SparseseqError(f"device {spec!r} does not exist: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise SparseseqError(f"device type {device.type!r} is not supported: use auto, cpu or cuda")
    return device


@contextmanager
def using_threads(threads: Optional[int]) -> Iterator[None]:
    """``--threads N``: torch's CPU threads for the command (None: what torch picked, which
    follows OMP_NUM_THREADS when set). Jobs run side by side should share the cores, threads
    per job x jobs <= cores: two jobs with all cores each make each other many times slower."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise SparseseqError(f"--threads {threads} must be at least 1")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tagger_threads(device: torch.device):
    """The tagger runs on one CPU thread: its matrices are tiny (e.g. 20 x 40), so more threads
    only add OpenMP barriers (an epoch took 95 s instead of 3 s on a busy machine), and
    training measured its dev accuracy this way, which ``tag`` reproduces exactly."""
    return using_threads(1 if device.type == "cpu" else None)
