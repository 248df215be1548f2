"""Data-parallel training across the processes torchrun starts (torch.distributed).

    torchrun --nproc-per-node 4 -m sparseseq_cli train-lm --preset awd-sparse

torchrun starts one process (a *rank*) per GPU and tells each, through environment
variables, who it is (RANK, LOCAL_RANK, WORLD_SIZE) and where to meet (MASTER_ADDR,
MASTER_PORT). :func:`data_parallel` joins them: NCCL with one GPU per process
(``cuda:LOCAL_RANK``) on CUDA, gloo on the CPU. Started without torchrun (or with one
process) it gives a :class:`World` of one, whose helpers do nothing, so the training loops
read the same either way.

A language model's batch is ``batch_size`` independent columns, each with its own hidden
state; every rank takes an equal, contiguous share of them and keeps their hidden state:

    batchify, batch_size 6 | c0 c1 c2 | c3 c4 c5 |
    two ranks              |  rank 0  |  rank 1  |

The losses are means over equal shares, so the mean of the ranks' gradients (what DDP's
all-reduce computes) is the gradient of the whole batch: one step of N ranks is the step
of one process. Rank 0 alone writes the run folder and prints; what the others need from
it (the start rules, a checkpoint) rank 0 reads and broadcasts, so only the data has to be
on every node.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from sparseseq_cli.devices import resolve_device
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.training.state import rng_state, set_rng_state

T = TypeVar("T")

# Ranks must stop at the same step, so a Ctrl-C is acted on when they next vote, every this
# many steps: one scalar all-reduce (and sync) per vote, and a wait well inside the 30 s
# torchrun gives the workers between passing the signal on and killing them.
AGREE_EVERY = 10

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks (one rank: a plain run)."""
    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    # ---- batch columns ------------------------------------------------------------------
    def check_columns(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise SparseseqError(f"train.batch_size {batch_size} does not split over {self.size} "
                                 f"processes: give a batch_size divisible by {self.size}, or start "
                                 f"torchrun with a number of processes that divides it")

    def shard_columns(self, data: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of the columns of ``data`` (rows, B, ...), side by side;
        a contiguous copy (cuDNN wants contiguous hidden states)."""
        self.check_columns(data.size(1))
        width = data.size(1) // self.size
        return data[:, self.rank * width:(self.rank + 1) * width].contiguous()

    def split_columns(self, data: torch.Tensor) -> torch.Tensor:
        """This rank's share of the columns for evaluation, where shares may differ by one
        (or be empty): the summed losses do not depend on how the columns are split."""
        return torch.tensor_split(data, self.size, dim=1)[self.rank].contiguous()

    # ---- collectives (no-ops for a world of one) ----------------------------------------
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (on this rank's device) summed over the ranks, as a new tensor."""
        if not self.distributed:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    def any(self, flag: bool) -> bool:
        return self.sum(torch.tensor(float(flag), device=self.device)).item() > 0

    def stop_now(self, requested: bool, step: int) -> bool:
        """Whether the loop stops before ``step``: at once in a plain run; together, when
        any rank asked, at the ranks' next vote in a data-parallel one."""
        if not self.distributed:
            return requested
        return step % AGREE_EVERY == 0 and self.any(requested)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable, small), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        objects: list[Any] = [None] * self.size
        dist.all_gather_object(objects, obj)
        return objects

    def on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by rank 0 alone (reading or writing the run folder), its result given
        to every rank; when it raises, every rank raises, so none waits for the others."""
        if not self.distributed:
            return fn()
        if self.is_main:
            try:
                result = fn()
            except BaseException as err:
                shared = err if isinstance(err, SparseseqError) else None
                dist.broadcast_object_list([("failed", shared)], src=0)
                raise
            dist.broadcast_object_list([("ok", result)], src=0)
            return result
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0)
        status, payload = box[0]
        if status == "ok":
            return payload
        if payload is not None:
            raise payload
        raise RuntimeError("rank 0 failed: its own message says why")

    # ---- models and gradients -----------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step calls: ``model``, or DDP around it, which makes the
        ranks start from rank 0's weights and averages the gradients during backward."""
        if not self.distributed:
            return model
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def broadcast_parameters(self, model: nn.Module) -> None:
        """Every rank starts from rank 0's weights."""
        if self.distributed:
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)

    def sum_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Each gradient summed over the ranks (a rank without data this step adds zeros),
        in one all-reduce."""
        if not self.distributed:
            return
        params = list(params)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in params])
        dist.all_reduce(flat)
        for p, grad in zip(params, flat.split([p.numel() for p in params])):
            p.grad = grad.view_as(p)

    # ---- random number generators -------------------------------------------------------
    def seed_dropout(self, seed: int) -> None:
        """After the (identical) model initialization: rank 0 goes on with the stream a
        plain run uses, rank r > 0 draws its dropout masks from seed + r, so no two ranks
        drop the same units of their columns."""
        if self.rank > 0:
            torch.manual_seed(seed + self.rank)

    def rng_record(self) -> dict[str, Any]:
        """Checkpoint entries for every rank's generators: ``rng`` (rank 0's, what a plain
        run saves and resumes from) and, with several ranks, ``rank_rngs`` (all of them)."""
        states = self.gather(rng_state())
        return {"rng": states[0], "rank_rngs": states} if self.distributed else {"rng": states[0]}

    def restore_rng(self, ckpt: dict[str, Any], seed: int) -> None:
        """Each rank's generators from a checkpoint with as many ranks; from another number
        of ranks, rank 0's saved state and fresh dropout streams for the others."""
        saved = ckpt.get("rank_rngs")
        if saved is not None and len(saved) == self.size:
            set_rng_state(saved[self.rank])
        else:
            set_rng_state(ckpt["rng"])
            self.seed_dropout(seed)


def _rank_device(spec: str, local_rank: int) -> torch.device:
    """A rank's device: the CPU, or the GPU of its local rank."""
    device = resolve_device(spec)
    if device.type == "cpu":
        return device
    if device.index is not None:
        raise SparseseqError(f"under torchrun each process uses the GPU of its local rank: give "
                             f"--device cuda (or auto), not {spec}")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise SparseseqError(f"local rank {local_rank} has no GPU of its own (this node has {count}): "
                             f"start at most {count} processes per node (torchrun --nproc-per-node {count})")
    return torch.device("cuda", local_rank)


@contextmanager
def data_parallel(device: str = "auto") -> Iterator[World]:
    """The world this process belongs to, from torchrun's environment variables: joins the
    process group on entry and leaves it on exit. ``device`` is the --device option."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise SparseseqError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number: "
                             f"start data-parallel runs with torchrun") from None
    if size <= 1:
        yield World(device=resolve_device(device))
        return
    missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise SparseseqError(f"WORLD_SIZE={size} is set but {', '.join(missing)} not: start "
                             f"data-parallel runs with torchrun (or unset WORLD_SIZE)")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    rank_device = _rank_device(device, local_rank)
    world = World(rank, size, rank_device)
    if rank_device.type == "cuda":
        torch.cuda.set_device(rank_device)   # also where NCCL stages the objects it sends
    dist.init_process_group(world.backend)
    try:
        yield world
    finally:
        dist.destroy_process_group()
