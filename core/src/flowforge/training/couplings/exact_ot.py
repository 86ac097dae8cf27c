"""Minibatch optimal transport: each noise sample goes to one data point, minimising the cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.training.couplings.assignment import assignment
from flowforge.training.couplings.base import Coupled, Coupling, squared_distances


@dataclass(frozen=True)
class ExactOT(Coupling):
    """Reorders the noise by the optimal assignment for the squared distance (Tong et al. 2024,
    Pooladian et al. 2023): the batch's discrete W2 optimal transport plan, a permutation.

    Exact, by `scipy.optimize.linear_sum_assignment` on the CPU (see `assignment`): one host
    round trip per step, O(B^3). Batches above `max_batch` are refused; use `sinkhorn`, which
    stays on the device.

    >>> batch = ExactOT().pair(x_0, x_1, generator=gen)
    >>> # batch.x_0 is a permutation of x_0; sum ||batch.x_1 - batch.x_0||^2 is minimal
    """

    max_batch: Annotated[
        int, Field(ge=1, description="largest batch solved exactly (O(B^3) on the CPU)")
    ] = 512

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        check_batch(x_1.shape[0], self.max_batch, "exact_ot")
        with torch.no_grad():
            perm = assignment(squared_distances(x_1, x_0))
        return Coupled(x_0[perm], x_1)


def check_batch(batch: int, max_batch: int, name: str) -> None:
    """Refuse batches too large for an exact CPU assignment, naming the fixes."""
    if batch > max_batch:
        raise InvalidArgumentError(
            f"train.coupling {name} solves an exact assignment per batch and is limited to "
            f"max_batch={max_batch}, but train.batch_size is {batch}. Lower train.batch_size, "
            "raise train.coupling.params.max_batch (O(B^3) CPU time per step), or use "
            "train.coupling: sinkhorn (entropic OT on the device)"
        )
