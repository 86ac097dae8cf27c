"""EDM's log-normal noise levels, mapped to training times through the path."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor
from torch.special import ndtr, ndtri

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, Path
from flowforge.training.time_samplers.base import Span, TimeSampler


@dataclass(frozen=True)
class LogNormal(TimeSampler):
    """`log sigma_edm ~ N(mean, std^2)` truncated to the span, `t = path.t_from_log_snr(-2 log s)`.

    `sigma_edm = sigma(t) / alpha(t)` is the noise level of `x_t / alpha(t)` (EDM's sigma on any
    affine path); EDM (Karras et al. 2022) draws `log sigma ~ N(-1.2, 1.2^2)` for data of std
    0.5 (for unit-std data the same levels relative to the data are `mean = -1.2 + log 2`).
    Levels outside the span's `[sigma_edm(t1), sigma_edm(t0)]` are cut off and the rest
    renormalised. Density: `N(log sigma_edm(t); mean, std^2) |d log sigma_edm / dt| / Z`.

    >>> LogNormal().sample(256, EDM(), generator=gen, like=x_1)
    """

    mean: Annotated[float, Field(description="mean of log sigma_edm")] = -1.2
    std: Annotated[float, Field(gt=0, description="std of log sigma_edm")] = 1.2

    @staticmethod
    def _affine(path: Path) -> AffinePath:
        if not isinstance(path, AffinePath):
            raise InvalidArgumentError(
                f"time_sampler lognormal needs an affine path (alpha, sigma), got "
                f"{type(path).__name__}; use logit_normal or uniform"
            )
        return path

    def _z(self, path: AffinePath, t: Tensor) -> Tensor:
        """Standardised log noise level at `t`: `(log sigma_edm(t) - mean) / std`."""
        return (-0.5 * path.log_snr(t) - self.mean) / self.std

    def _bounds(self, path: AffinePath, span: Span, like: Tensor) -> tuple[Tensor, Tensor]:
        """`Phi(z)` at the span's data end t1 (lowest noise) and at its noise end t0."""
        ends = torch.linspace(*span, 2, dtype=torch.float64, device=like.device)
        z0, z1 = self._z(path, ends)
        return ndtr(z1), ndtr(z0)

    def _icdf(self, u: Tensor, path: Path, span: Span) -> Tensor:
        path = self._affine(path)
        lo, hi = self._bounds(path, span, u)
        # t grows as the noise level falls, so P(T <= t) = u is Phi(z) = hi - u (hi - lo).
        z = ndtri(hi - u * (hi - lo))
        return path.t_from_log_snr(-2.0 * (self.mean + self.std * z))

    def _cdf(self, t: Tensor, path: Path, span: Span) -> Tensor:
        path = self._affine(path)
        lo, hi = self._bounds(path, span, t)
        return (hi - ndtr(self._z(path, t))) / (hi - lo)

    def _density(self, t: Tensor, path: Path, span: Span) -> Tensor:
        path = self._affine(path)
        lo, hi = self._bounds(path, span, t)
        a, s = path.alpha(t), path.sigma(t)
        speed = path.d_alpha(t) / a - path.d_sigma(t) / s  # -d log sigma_edm / dt
        z = self._z(path, t)
        value = torch.exp(-0.5 * z * z) / (self.std * math.sqrt(2 * math.pi)) * speed / (hi - lo)
        return torch.where(torch.isfinite(z), value, torch.zeros_like(value))
