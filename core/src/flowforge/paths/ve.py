"""The variance-exploding path with a geometric noise schedule (Song et al. 2021, SMLD)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class VE(AffinePath):
    """`alpha = 1`, `sigma(t) = sigma_max (sigma_min / sigma_max)^t`: log-linear noise levels.

    The source at t=0 is `N(0, sigma_max^2 I)` plus data; scale `x_init` by `sigma(0)` to sample.

    >>> path = VE(sigma_min=0.01, sigma_max=80.0)
    >>> path.sigma(torch.tensor([0.0, 1.0]))  # tensor([80.0, 0.01])
    """

    sigma_min: Annotated[float, Field(gt=0, description="noise level at t=1")] = 0.01
    sigma_max: Annotated[float, Field(gt=0, description="noise level at t=0")] = 80.0

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_min / self.sigma_max)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_max * torch.exp(t * self._log_ratio)

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return self._log_ratio * self.sigma(t)

    def log_snr(self, t: Tensor) -> Tensor:
        return -2.0 * (math.log(self.sigma_max) + t * self._log_ratio)

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return (-0.5 * log_snr - math.log(self.sigma_max)) / self._log_ratio
