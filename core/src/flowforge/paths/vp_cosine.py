"""The variance-preserving cosine path (Nichol & Dhariwal 2021, trigonometric interpolant)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class VPCosine(AffinePath):
    """`alpha = sin(pi t / 2)`, `sigma = cos(pi t / 2)`: alpha^2 + sigma^2 = 1 at every t.

    >>> path = VPCosine()
    >>> path.log_snr(torch.tensor([0.5]))  # 0: equal signal and noise at t = 1/2
    """

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def log_snr(self, t: Tensor) -> Tensor:
        return 2.0 * torch.log(torch.tan(0.5 * math.pi * t))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return torch.atan(torch.exp(log_snr / 2.0)) * (2.0 / math.pi)
