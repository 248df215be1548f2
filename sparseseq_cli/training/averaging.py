"""Parameter averaging for NT-ASGD (Merity et al., 2017): plain SGD steps, plus a running
mean of the parameters over every step since averaging began. Validation and checkpoints
use the mean.

The original code switched to ``torch.optim.ASGD(t0=0, lambd=0)``, whose update is the SGD
step (with the same learning rate and weight decay) and whose ``ax`` is such a mean; keeping
the SGD optimizer and averaging here keeps the optimizer state simple to save and restore.
(torch's ASGD lets its first two iterates count once between them; this mean weighs every
iterate after the switch equally.)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch


class ParameterAverage:
    """``mean`` of the parameters after each :meth:`update` (call it after ``optimizer.step()``)."""

    def __init__(self, params: Iterable[torch.nn.Parameter]):
        self.params = [p for p in params if p.requires_grad]
        self.mean = [p.detach().clone() for p in self.params]
        self.count = 0

    @torch.no_grad()
    def update(self) -> None:
        self.count += 1
        weight = 1.0 / self.count  # mean_n = mean_{n-1} + (x_n - mean_{n-1}) / n
        for mean, param in zip(self.mean, self.params):
            mean.lerp_(param, weight)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within the block the model holds the averaged weights; its own come back after."""
        with torch.no_grad():
            saved = [p.detach().clone() for p in self.params]
            for param, mean in zip(self.params, self.mean):
                param.copy_(mean)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, own in zip(self.params, saved):
                    param.copy_(own)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": [m.clone() for m in self.mean]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["mean"]) != len(self.mean):
            raise ValueError(f"averaging state holds {len(state['mean'])} tensors, "
                             f"the model has {len(self.mean)} parameters")
        self.count = int(state["count"])
        for mean, saved in zip(self.mean, state["mean"]):
            mean.copy_(saved)
