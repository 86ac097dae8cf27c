"""Two interleaving half circles with Gaussian noise: the classic 2-D toy distribution."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.data.synthetic import SyntheticDataset


@dataclass(frozen=True)
class TwoMoons(SyntheticDataset):
    """Points on two half circles of radius 1, the lower one shifted by (1, -0.5), plus noise.

    Each point picks a moon with probability 1/2 and an angle uniform on [0, pi], so every draw
    is i.i.d. from one fixed distribution (what a sampling-noise baseline needs). The moon is
    the point's label (`labels()`: 0 upper, 1 lower).

    >>> moons = TwoMoons(noise=0.1)
    >>> moons.draw(4, torch.Generator().manual_seed(0)).shape   # (4, 2)
    """

    noise: Annotated[
        float, Field(ge=0, description="std of the Gaussian noise added to each point")
    ] = 0.1

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        return self.draw_labelled(n, generator)[0]

    def draw_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Points and their moon: label 0 the upper half circle, 1 the lower one."""
        lower = torch.randint(0, 2, (n,), generator=generator)
        angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        x = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        shifted = torch.stack([1.0 - x[:, 0], 0.5 - x[:, 1]], dim=1)
        x = torch.where(lower.bool()[:, None], shifted, x)
        x = x + self.noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return x.float(), lower
