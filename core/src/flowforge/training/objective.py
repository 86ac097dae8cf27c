"""What a training step minimises: an objective draws the step's batch and scores it per sample.

The trainer is generic over objectives. `draw` produces the whole batch of a step, the one
place where a step's randomness is drawn (from the trainer's generator), so gradient
accumulation splits the same batch into micro-batches. A data-parallel trainer passes `part`,
the rows of the global batch its process trains on: every process draws the same random numbers
(for the whole batch) and keeps its rows, so the processes together train on exactly the batch
one process would draw, and their generators stay equal. `loss` scores any (micro-)batch sample
by sample; the trainer sums and divides by the whole batch's size, so a step's gradient is that
of the mean over the whole batch however it is split.

A batch is a dict of tensors that share their leading (batch) dimension.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError

Batch = dict[str, Tensor]
Network = Callable[..., Tensor]


class Objective(abc.ABC):
    """Base of training objectives (`Regression`, `Distillation`).

    >>> batch = objective.draw(256, generator)        # every random draw of the step
    >>> mine = objective.draw(256, generator, part=slice(128, 256))   # rank 1 of 2
    >>> per_sample = objective.loss(network, batch)   # (256,), differentiable
    """

    @abc.abstractmethod
    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        """The random inputs of one step's `n` samples, drawn from `generator`; with `part`,
        only those rows; `generator` advances alike for every part of one size.

        A draw must not read the model being trained: on CUDA the trainer draws the next
        step's batch while the current step still runs (`train.draw_ahead`)."""

    @abc.abstractmethod
    def loss(self, network: Network, batch: Batch) -> Tensor:
        """Each sample's loss `(B,)` (weights included) of `network` on `batch`."""


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """`batch` cut into `parts` consecutive micro-batches of equal size along dimension 0."""
    sizes = {v.shape[0] for v in batch.values()}
    if len(sizes) != 1:
        raise InvalidArgumentError(
            f"a batch's tensors must share their first dimension, got sizes {sorted(sizes)}"
        )
    (n,) = sizes
    if parts < 1 or n % parts:
        raise InvalidArgumentError(
            f"train.grad_accumulation ({parts}) must divide the batch size ({n})"
        )
    if parts == 1:
        return [batch]
    chunks = {k: v.split(n // parts) for k, v in batch.items()}
    return [{k: c[i] for k, c in chunks.items()} for i in range(parts)]
