"""``--tensorboard`` (``log.tensorboard``): the run's numbers also as TensorBoard events, in
``RUN/tensorboard/``, for watching long runs as curves. metrics.jsonl stays the record: the
events are a view of the same numbers, written by rank 0 only.

Per epoch every number of the metrics line (tag ``<phase>/<name>``, step = epoch); per log
interval of a language model the training loss (``<phase>/interval_loss``, step = batches
since the phase began). A resumed run purges the events written after its checkpoint, as
it trims metrics.jsonl.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_folder import RunFolder

FOLDER = "tensorboard"


def require_tensorboard() -> None:
    """One line (exit 2) when the optional package is missing, before any work is done."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise SparseseqError("--tensorboard needs the tensorboard package: pip install "
                             "'sparseseq[tensorboard]' (or drop --tensorboard)") from None


class EpochLog:
    """Where a phase's per-epoch metrics go: metrics.jsonl, and TensorBoard when asked."""

    def __init__(self, run: RunFolder, phase: str, enabled: bool, resumed_after: Optional[int] = None):
        self.run, self.phase = run, phase
        self.writer = None
        if enabled and run.writer:
            require_tensorboard()
            from torch.utils.tensorboard import SummaryWriter
            purge = None if resumed_after is None else resumed_after + 1
            self.writer = SummaryWriter(log_dir=str(Path(run.path) / FOLDER), purge_step=purge)

    def epoch(self, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)
        if self.writer is not None:
            for name, value in record.items():
                if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{self.phase}/{name}", value, record["epoch"])
            self.writer.flush()

    def interval(self, step: int, loss: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar(f"{self.phase}/interval_loss", loss, step)

    def __enter__(self) -> "EpochLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
