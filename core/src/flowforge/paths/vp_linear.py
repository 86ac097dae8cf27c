"""The variance-preserving path of the DDPM linear beta schedule in continuous time (Song 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class VPLinear(AffinePath):
    """VP-SDE with `beta(s) = beta_min + s (beta_max - beta_min)` in diffusion time `s = 1 - t`.

    `alpha = exp(-s^2 (beta_max - beta_min) / 4 - s beta_min / 2)`, `sigma = sqrt(1 - alpha^2)`.
    sigma's derivative is unbounded at t=1, so sampling stops at `t = 1 - eps` by default.

    >>> path = VPLinear(beta_min=0.1, beta_max=20.0)
    >>> path.t_span  # (0.0, 0.999)
    """

    beta_min: Annotated[float, Field(gt=0, description="beta at the data end (t=1)")] = 0.1
    beta_max: Annotated[float, Field(gt=0, description="beta at the noise end (t=0)")] = 20.0
    eps: Annotated[
        float, Field(gt=0, lt=0.5, description="default sampling stops at t = 1 - eps")
    ] = 1e-3

    def _log_alpha(self, t: Tensor) -> Tensor:
        s = 1.0 - t
        return -0.25 * s**2 * (self.beta_max - self.beta_min) - 0.5 * s * self.beta_min

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self._log_alpha(t)))

    def d_alpha(self, t: Tensor) -> Tensor:
        s = 1.0 - t
        return self.alpha(t) * (0.5 * s * (self.beta_max - self.beta_min) + 0.5 * self.beta_min)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -self.alpha(t) * self.d_alpha(t) / self.sigma(t)

    def log_snr(self, t: Tensor) -> Tensor:
        la2 = 2.0 * self._log_alpha(t)
        return la2 - torch.log(-torch.expm1(la2))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        # log alpha = log(sigmoid(lambda)) / 2 is quadratic in s; take its positive root.
        c = 0.5 * torch.nn.functional.logsigmoid(log_snr)
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        s = 2.0 * (-c) / (b + torch.sqrt(b * b - 4.0 * a * c))
        return 1.0 - s

    @property
    def t_span(self) -> tuple[float, float]:
        return (0.0, 1.0 - self.eps)
