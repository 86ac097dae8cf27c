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

    In float32, `pi / 2` rounds above pi/2, so `cos` at t = 1 is -4e-8: sigma is clamped at 0
    (exactly 0 at the data end) and the log-SNR taken from sin and the clamped cos (+inf there,
    never the NaN of the log of a negative tangent).

    >>> path = VPCosine()
    >>> path.log_snr(torch.tensor([0.5]))  # 0: equal signal and noise at t = 1/2
    """

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t).clamp_min(0.0)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def log_snr(self, t: Tensor) -> Tensor:
        x = 0.5 * math.pi * t
        return 2.0 * (torch.log(torch.sin(x)) - torch.log(torch.cos(x).clamp_min(0.0)))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return torch.atan(torch.exp(log_snr / 2.0)) * (2.0 / math.pi)
