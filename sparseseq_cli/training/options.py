"""What a training command was asked for, as one object (the CLI fills it from its flags)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class TrainOptions:
    """The options of train-lm, overfit, train-pos and finetune-lm. Every value that has a
    config key defaults to None ("not given"), so it never resets a preset's value."""
    preset: Optional[str] = None
    config_file: Optional[Path] = None
    sets: list[str] = field(default_factory=list)     # --set key=value, in order
    seed: Optional[int] = None
    epochs: Optional[int] = None
    data: Optional[str] = None
    max_batches: Optional[int] = None
    save: Optional[Path] = None       # the run folder (finetune-lm: the trained run)
    precision: Optional[str] = None   # train.precision: fp32, bf16 or fp16
    tensorboard: Optional[bool] = None  # log.tensorboard (True: on; None: the config's)
    device: str = "auto"
    resume: bool = False
    force: bool = False
    quiet: bool = False

    def flags(self) -> dict[str, Any]:
        """The dedicated flags as config keys (None: not given)."""
        return {"train.seed": self.seed, "train.epochs": self.epochs, "data.path": self.data,
                "train.max_batches": self.max_batches, "train.precision": self.precision,
                "log.tensorboard": self.tensorboard}
