"""Mixed precision for a training phase (``train.precision``: fp32, bf16 or fp16).

The forward pass and the loss run under ``torch.autocast`` in the chosen type; the weights,
the optimizer, the NT-ASGD average and every checkpoint stay fp32 (the "master weights").
fp16's narrow range needs a gradient scaler, which multiplies the loss before backward and
skips a step whose gradients overflowed; bf16 has fp32's range and needs none. fp32 is the
plain path: every call here then does exactly what the loop did without it.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Optional

import torch

from sparseseq_cli.config import Precision
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.evaluation import autocast

def check_precision(precision: Precision, device: torch.device) -> None:
    if precision is Precision.FP16 and device.type != "cuda":
        raise SparseseqError("--precision fp16 needs a CUDA GPU (the CPU has no fast fp16 and "
                             "no gradient scaler): use bf16 or fp32 on the CPU")


class Mixed:
    def __init__(self, precision: Precision, device: torch.device):
        check_precision(precision, device)
        self.precision, self.device_type = precision, device.type
        self.scaler: Optional[torch.amp.GradScaler] = (
            torch.amp.GradScaler(device.type) if precision is Precision.FP16 else None)

    def autocast(self) -> AbstractContextManager:
        return autocast(self.precision, torch.device(self.device_type))

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Before clipping: the gradients as they are, not scaled."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> Optional[dict[str, Any]]:
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: Optional[dict[str, Any]]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
