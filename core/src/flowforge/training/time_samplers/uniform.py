"""Uniform training times: every time on the span equally often (the flow-matching default)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.training.time_samplers.base import UnitIntervalSampler


@dataclass(frozen=True)
class Uniform(UnitIntervalSampler):
    """`t ~ U(t0, t1)`: density `1 / (t1 - t0)` on the span.

    >>> Uniform(draws="stratified").sample(64, CondOT(), generator=gen, like=x_1)
    """

    def unit_icdf(self, u: Tensor) -> Tensor:
        return u

    def unit_cdf(self, s: Tensor) -> Tensor:
        return s

    def unit_density(self, s: Tensor) -> Tensor:
        return torch.ones_like(s)
