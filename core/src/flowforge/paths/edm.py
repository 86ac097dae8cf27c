"""The EDM path (Karras et al. 2022): VE noise with the rho-spaced schedule built into time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class EDM(AffinePath):
    """`alpha = 1`, `sigma(t) = (s_max^(1/rho) + t (s_min^(1/rho) - s_max^(1/rho)))^rho`.

    A uniform grid in t is exactly Karras' rho-schedule of noise levels.

    >>> path = EDM(sigma_min=0.002, sigma_max=80.0, rho=7.0)
    >>> path.sigma(torch.tensor([0.0, 1.0]))  # tensor([80.0, 0.002])
    """

    sigma_min: Annotated[float, Field(gt=0, description="noise level at t=1")] = 0.002
    sigma_max: Annotated[float, Field(gt=0, description="noise level at t=0")] = 80.0
    rho: Annotated[float, Field(gt=0, description="schedule curvature (7 in EDM)")] = 7.0

    @property
    def _ends(self) -> tuple[float, float]:
        return self.sigma_max ** (1.0 / self.rho), self.sigma_min ** (1.0 / self.rho)

    def _base(self, t: Tensor) -> Tensor:
        hi, lo = self._ends
        return hi + t * (lo - hi)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self._base(t) ** self.rho

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        hi, lo = self._ends
        return self.rho * self._base(t) ** (self.rho - 1.0) * (lo - hi)

    def log_snr(self, t: Tensor) -> Tensor:
        return -2.0 * self.rho * torch.log(self._base(t))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        hi, lo = self._ends
        return (torch.exp(-0.5 * log_snr / self.rho) - hi) / (lo - hi)
