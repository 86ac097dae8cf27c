"""The processes of a data-parallel run as one object: rank, size, shards and small collectives.

`current()` reads the default `torch.distributed` process group (one process, rank 0, when none
is initialised), so code written for one process runs unchanged on several: the trainer and
sharded sampling ask it which part of the work is theirs. Every collective here is called by all
ranks at the same point; with one process each is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class World:
    """`size` processes; this one is `rank` (0 is the main process: it logs and writes).

    >>> world = current()                    # World(rank=1, size=2) under torchrun -nproc 2
    >>> batch[world.batch_part(256)]         # rows 128:256 of a global batch of 256
    """

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process (collectives do something)."""
        return self.size > 1

    def batch_part(self, n: int) -> slice:
        """This rank's equal share of a global batch of `n` rows; `n` must divide evenly."""
        if n % self.size:
            raise InvalidArgumentError(
                f"train.batch_size ({n}) is the global batch and must be divisible by the "
                f"number of processes ({self.size}); use a multiple of {self.size}"
            )
        size = n // self.size
        return slice(self.rank * size, (self.rank + 1) * size)

    def span(self, n: int) -> range:
        """This rank's contiguous share of `n` items (sizes differ by at most one, rank order)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (self.rank < extra))

    def spans(self, n: int) -> list[range]:
        """Every rank's `span(n)`, in rank order."""
        return [World(r, self.size).span(n) for r in range(self.size)]

    # ---- collectives (all ranks call them at the same point) ----------------------------

    def mean_(self, tensor: Tensor) -> Tensor:
        """Average `tensor` over the ranks, in place (no host synchronisation)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(self.size)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank (one host read)."""
        if not self.active:
            return flag
        value = torch.tensor([float(flag)], device=comm_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def broadcast(self, obj: object) -> object:
        """The main process's `obj` (a picklable value), on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=comm_device())
        return box[0]


def current() -> World:
    """The default process group as a `World` (a single process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def comm_device() -> torch.device:
    """Where tensors must be for the group's backend: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
