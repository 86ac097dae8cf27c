"""Logit-normal training times: more weight on the middle of the path (Esser et al. 2024, SD3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor
from torch.special import ndtr, ndtri

from flowforge.training.time_samplers.base import UnitIntervalSampler


@dataclass(frozen=True)
class LogitNormal(UnitIntervalSampler):
    """`s = sigmoid(mean + std z)`, `z ~ N(0, 1)`, stretched onto the span.

    Density of `s`: `N(logit s; mean, std^2) / (s (1 - s))`. Stable Diffusion 3 uses mean 0,
    std 1; a positive mean moves times towards the data end (t = 1).

    >>> LogitNormal(mean=0.0, std=1.0).sample(256, CondOT(), generator=gen, like=x_1)
    """

    mean: Annotated[float, Field(description="location of logit(s)")] = 0.0
    std: Annotated[float, Field(gt=0, description="scale of logit(s)")] = 1.0

    def unit_icdf(self, u: Tensor) -> Tensor:
        return torch.sigmoid(self.mean + self.std * ndtri(u))

    def unit_cdf(self, s: Tensor) -> Tensor:
        return ndtr((torch.logit(s) - self.mean) / self.std)

    def unit_density(self, s: Tensor) -> Tensor:
        z = (torch.logit(s) - self.mean) / self.std
        value = torch.exp(-0.5 * z * z) / (self.std * math.sqrt(2 * math.pi) * s * (1 - s))
        interior = (s > 0) & (s < 1)  # the density tends to 0 at both ends
        return torch.where(interior, value, torch.zeros_like(value))
