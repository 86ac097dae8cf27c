"""Noise schedules of discrete paths: total noise sigma(t) and keep probability exp(-sigma(t)).

flowforge time: t=0 is noise (every token corrupted), t=1 is data. A token of the data is still
intact at time t with probability `alpha(t) = exp(-sigma(t))`, so sigma decreases from large (or
infinite) at t=0 to (about) 0 at t=1. The continuous-time ELBO of absorbing diffusion weighs the
cross-entropy of a masked token at time t by `d_alpha(t) / (1 - alpha(t))` (MDLM, Sahoo et al.
2024, eq. 10, written in flowforge's time).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


class NoiseSchedule(abc.ABC):
    """sigma(t) and its derivative; everything else follows from them. `t` of any shape."""

    @abc.abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        """Total noise at t: decreasing, sigma(1) ~ 0."""

    @abc.abstractmethod
    def d_sigma(self, t: Tensor) -> Tensor:
        """d sigma / dt (<= 0)."""

    def alpha(self, t: Tensor) -> Tensor:
        """Probability that a data token is intact at t: exp(-sigma(t))."""
        return torch.exp(-self.sigma(t))

    def d_alpha(self, t: Tensor) -> Tensor:
        """d alpha / dt = -sigma'(t) exp(-sigma(t)) (>= 0)."""
        return -self.d_sigma(t) * self.alpha(t)

    def corrupt_prob(self, t: Tensor) -> Tensor:
        """Probability that a token is corrupted (masked) at t: 1 - exp(-sigma(t))."""
        return -torch.expm1(-self.sigma(t))

    def elbo_weight(self, t: Tensor) -> Tensor:
        """Weight of a corrupted token's cross-entropy in the ELBO: alpha' / (1 - alpha)."""
        return -self.d_sigma(t) / torch.expm1(self.sigma(t))


@dataclass(frozen=True)
class LogLinear(NoiseSchedule):
    """alpha(t) = eps + (1 - eps) t, i.e. sigma(t) = -log(1 - (1 - eps)(1 - t)) (SEDD/MDLM).

    ELBO weight `(1 - eps) / ((1 - eps)(1 - t))` = 1 / (1 - t): RADD's lambda-DCE weight 1/lambda
    with lambda = 1 - t the masking probability. `eps = 0` masks everything at t = 0.
    """

    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 <= self.eps < 1:
            raise InvalidArgumentError(f"log_linear eps must be in [0, 1), got {self.eps}")

    def sigma(self, t: Tensor) -> Tensor:
        return -torch.log1p(-(1 - self.eps) * (1 - t))

    def d_sigma(self, t: Tensor) -> Tensor:
        return -(1 - self.eps) / (1 - (1 - self.eps) * (1 - t))

    def elbo_weight(self, t: Tensor) -> Tensor:
        """Closed form 1 / (1 - t): finite at t = 0 even when eps = 0."""
        return 1.0 / (1.0 - t)


@dataclass(frozen=True)
class Geometric(NoiseSchedule):
    """sigma(t) = sigma_min^t sigma_max^(1 - t) (SEDD's geometric schedule in flowforge time)."""

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise InvalidArgumentError(
                f"geometric schedule needs 0 < sigma_min < sigma_max, got "
                f"{self.sigma_min}, {self.sigma_max}"
            )

    def sigma(self, t: Tensor) -> Tensor:
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        return torch.exp(t * lo + (1 - t) * hi)

    def d_sigma(self, t: Tensor) -> Tensor:
        return self.sigma(t) * (math.log(self.sigma_min) - math.log(self.sigma_max))


def make_schedule(name: str, eps: float, sigma_min: float, sigma_max: float) -> NoiseSchedule:
    """The schedule a path's parameters name (`log_linear` or `geometric`)."""
    if name == "log_linear":
        return LogLinear(eps)
    if name == "geometric":
        return Geometric(sigma_min, sigma_max)
    raise InvalidArgumentError(f"unknown schedule {name!r}; use log_linear or geometric")
