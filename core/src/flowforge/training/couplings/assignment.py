"""Exact minimum-cost assignment of a square cost matrix, by scipy's Hungarian-type solver."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from flowforge.errors import InvalidArgumentError


def assignment(cost: Tensor) -> Tensor:
    """`perm (n,)` long on `cost`'s device minimising `sum_j cost[j, perm[j]]`; `cost (n, n)`.

    Solved exactly on the CPU in float64 (`scipy.optimize.linear_sum_assignment`, the shortest
    augmenting path method of Crouse 2016, O(n^3)): one device-to-host copy of the matrix and
    one host-to-device copy of the answer per call.
    """
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise InvalidArgumentError(
            f"assignment needs a square cost matrix, got {tuple(cost.shape)}"
        )
    rows, cols = linear_sum_assignment(cost.detach().to("cpu", torch.float64).numpy())
    perm = torch.empty(cost.shape[0], dtype=torch.long)
    perm[torch.from_numpy(rows)] = torch.from_numpy(cols)
    return perm.to(cost.device)
