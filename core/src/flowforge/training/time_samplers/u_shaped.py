"""U-shaped training times: more weight near both ends (Lee et al. 2024, rectified flow++)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.training.time_samplers.base import UnitIntervalSampler


@dataclass(frozen=True)
class UShaped(UnitIntervalSampler):
    """Density of `s` proportional to `exp(a s) + exp(a (1 - s))`, i.e. `cosh(a (s - 1/2))`.

    From "Improving the training of rectified flows": a mixture of the truncated exponential
    `a e^(a s) / (e^a - 1)` and its mirror image, with `a = 4`. Normalised density
    `a cosh(a (s - 1/2)) / (2 sinh(a / 2))`; the quantile function is closed-form.

    >>> UShaped(a=4.0).density(torch.tensor([0.0, 0.5]), CondOT())   # ~[2.07, 0.55]
    """

    a: Annotated[float, Field(gt=0, le=50, description="steepness towards the ends")] = 4.0

    @property
    def _half_sinh(self) -> float:
        return math.sinh(self.a / 2)

    def unit_icdf(self, u: Tensor) -> Tensor:
        return 0.5 + torch.asinh((2 * u - 1) * self._half_sinh) / self.a

    def unit_cdf(self, s: Tensor) -> Tensor:
        return 0.5 + torch.sinh(self.a * (s - 0.5)) / (2 * self._half_sinh)

    def unit_density(self, s: Tensor) -> Tensor:
        return self.a * torch.cosh(self.a * (s - 0.5)) / (2 * self._half_sinh)
