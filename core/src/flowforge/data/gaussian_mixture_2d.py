"""Gaussians on a circle in 2-D: a dataset whose exact log-density is known (for NLL checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.data.synthetic import SyntheticDataset
from flowforge.targets import GaussianMixture


@dataclass(frozen=True)
class GaussianMixture2D(SyntheticDataset):
    """`n_modes` equal-weight isotropic Gaussians with means evenly spaced on a circle.

    Built on `flowforge.targets.GaussianMixture`, so `log_prob` is exact and a trained model's
    likelihood can be compared with the truth.

    >>> data = GaussianMixture2D(n_modes=8, radius=4.0, std=0.5)
    >>> data.log_prob(data.splits()["test"]).mean()    # minus the differential entropy
    """

    n_modes: Annotated[int, Field(ge=1, description="number of Gaussians")] = 8
    radius: Annotated[float, Field(gt=0, description="radius of the circle of means")] = 4.0
    std: Annotated[float, Field(gt=0, description="std of each Gaussian")] = 0.5

    @cached_property
    def mixture(self) -> GaussianMixture:
        """The underlying analytic mixture (float64)."""
        angle = torch.arange(self.n_modes, dtype=torch.float64) * (2 * math.pi / self.n_modes)
        means = self.radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        return GaussianMixture(means, self.std)

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        return self.mixture.sample(n, generator=generator)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.mixture.log_prob(x.to(torch.float64)).to(x.dtype)
