"""Couplings: how a training batch pairs noise `x_0` with data `x_1` before the path is sampled.

Independent pairs give crossing conditional paths, whose marginal velocity averages many
directions; pairing noise with nearby data (optimal transport) straightens the learned flow, so
few-step sampling is more accurate. Couplings never change the data side: `x_1` (and anything
aligned with it, such as labels or masks) keeps its order, and only the noise is rearranged or
the pairs reweighted.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class Coupled:
    """A coupled batch: noise `x_0` and data `x_1` `(B, ...)`, and optional pair weights `(B,)`.

    `weight` (mean 1) multiplies each pair's loss; None means every pair counts once.
    """

    x_0: Tensor
    x_1: Tensor
    weight: Tensor | None = None


class Coupling(abc.ABC):
    """Abstract: pairs a batch of noise with a batch of data of the same size.

    Subclasses implement `pair`; couplings that pair within classes set `needs_labels = True`
    and get the data's integer labels `(B,)`. Draws come only from `generator`, so training
    stays reproducible and resumable.

    >>> coupling = registry.create("coupling", "exact_ot")
    >>> batch = coupling.pair(x_0, x_1, generator=gen)
    >>> loss = regression_loss(model, path, "velocity", batch.x_0, batch.x_1, t,
    ...                        pair_weight=batch.weight)
    """

    needs_labels: ClassVar[bool] = False

    @abc.abstractmethod
    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        """Pair noise `x_0` with data `x_1`, both `(B, ...)`; `labels (B,)` are the data's."""


def check_pairable(x_0: Tensor, x_1: Tensor) -> None:
    """Raise unless `x_0` and `x_1` are tensors of one shape `(B, ...)`."""
    if not isinstance(x_0, Tensor) or not isinstance(x_1, Tensor):
        raise InvalidArgumentError(
            "couplings pair tensor states (B, ...); for a structured state use "
            "train.coupling: independent"
        )
    if x_0.shape != x_1.shape:
        raise InvalidArgumentError(
            f"a coupling pairs noise and data of one shape, got x_0 {tuple(x_0.shape)} and x_1 "
            f"{tuple(x_1.shape)}"
        )


def squared_distances(x_1: Tensor, x_0: Tensor) -> Tensor:
    """The cost matrix `C[j, i] = ||x_1[j] - x_0[i]||^2` `(B, B)`: rows data, columns noise.

    Computed in at least float32, whatever the states' dtype.
    """
    check_pairable(x_0, x_1)
    dtype = torch.promote_types(x_1.dtype, torch.float32)
    a, b = x_1.reshape(x_1.shape[0], -1).to(dtype), x_0.reshape(x_0.shape[0], -1).to(dtype)
    # The expanded form is one matrix product (fast for wide images); clamp its rounding.
    cost = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return cost.clamp_min(0.0)
