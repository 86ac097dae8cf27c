"""Sharded sampling: a large sample set split into seeded batches that the ranks share.

A set of `n` samples is cut into batches of `batch_size` (the last may be smaller); batch `k`
holds the global samples `k * batch_size ...` and draws every random number from its own
generator, seeded by one base draw from the caller's generator and its first global index. A
batch is therefore the same whichever process solves it, and each rank solves a contiguous run
of batches (`World.span`): the rows gathered in rank order equal what one process draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from flowforge.distributed.world import World, comm_device, current
from flowforge.errors import InvalidArgumentError

# Rows exchanged per collective call are capped so that a gather of a large set never needs
# the whole set on the GPU at once.
CHUNK_BYTES = 256 << 20


@dataclass(frozen=True)
class SeededBatch:
    """Samples `start ... start + size - 1` of the set, drawn from `generator`."""

    start: int
    size: int
    generator: torch.Generator


def seeded_batches(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    *,
    device: torch.device | str = "cpu",
    world: World | None = None,
) -> list[SeededBatch]:
    """This rank's batches of an `n`-sample set (all of them in one process).

    Takes one draw from `generator` (the same on every rank when their generators agree);
    each batch's generator lives on `device`.

    >>> for b in seeded_batches(10_000, 1024, gen, device="cuda"):
    ...     x = torch.randn(b.size, 2, generator=b.generator, device="cuda")
    """
    if n < 0 or batch_size < 1:
        raise InvalidArgumentError(
            f"a sample set needs n >= 0 and batch_size >= 1, got n={n}, batch_size={batch_size}"
        )
    from flowforge.training.rng import derive_seed

    world = world or current()
    base = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    base_seed = int(base.item())
    batches = world.span(math.ceil(n / batch_size))
    return [
        SeededBatch(
            k * batch_size,
            min(batch_size, n - k * batch_size),
            torch.Generator(device=device).manual_seed(derive_seed(base_seed, f"batch:{k}")),
        )
        for k in batches
    ]


def sharded_sample(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    solve: Callable[[SeededBatch], tuple[Tensor, ...]],
    *,
    empty: tuple[Tensor, ...],
    device: torch.device | str = "cpu",
    on_batch: Callable[[int], None] | None = None,
) -> tuple[Tensor, ...]:
    """An `n`-sample set, made batch by batch, shared among the processes of a run.

    `solve(batch)` returns the batch's tensors `(batch.size, ...)` (on the CPU), drawing only
    from `batch.generator`; this process solves its `seeded_batches`, and the rows of every
    process are gathered (`gather_rows`), so each returns the whole set, equal to what one
    process makes. `empty`: zero-row tensors of the right shape and dtype, for a process left
    without a batch. `on_batch(k)` reports progress (the other processes' rows at the end).
    """
    world = current()
    parts = []
    for batch in seeded_batches(n, batch_size, generator, device=device, world=world):
        parts.append(solve(batch))
        if on_batch is not None:
            on_batch(batch.size)
    mine = tuple(torch.cat(p) for p in zip(*parts, strict=True)) if parts else empty
    whole = tuple(gather_rows(t, world) for t in mine)
    if on_batch is not None and world.active:
        on_batch(n - mine[0].shape[0])
    return whole


def gather_rows(part: Tensor, world: World | None = None) -> Tensor:
    """Every rank's `part (n_r, ...)` concatenated in rank order, on every rank.

    The parts may differ in length (not in row shape or dtype); the result is on `part`'s
    device. Exchanged in chunks of at most `CHUNK_BYTES` per collective.
    """
    world = world or current()
    if not world.active:
        return part
    dev = comm_device()
    counts = _counts(part.shape[0], world, dev)
    if not max(counts):
        return part
    row_bytes = max(1, math.prod(part.shape[1:]) * part.element_size())
    step = max(1, CHUNK_BYTES // (row_bytes * world.size))
    pieces: list[list[Tensor]] = [[] for _ in range(world.size)]
    for lo in range(0, max(counts), step):
        hi = min(max(counts), lo + step)
        mine = torch.zeros((hi - lo, *part.shape[1:]), dtype=part.dtype, device=dev)
        own = part[lo:hi]
        mine[: own.shape[0]] = own.to(dev)
        received = [torch.empty_like(mine) for _ in range(world.size)]
        dist.all_gather(received, mine)
        for r, rows in enumerate(received):
            keep = max(0, min(counts[r], hi) - lo)
            pieces[r].append(rows[:keep].to(part.device))
    return torch.cat([torch.cat(p) for p in pieces])


def _counts(n: int, world: World, device: torch.device) -> list[int]:
    mine = torch.tensor([n], dtype=torch.int64, device=device)
    every = [torch.empty_like(mine) for _ in range(world.size)]
    dist.all_gather(every, mine)
    return [int(c.item()) for c in every]
