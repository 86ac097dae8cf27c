"""The conditional optimal-transport (rectified flow) path: straight lines from noise to data."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class CondOT(AffinePath):
    """`alpha = t`, `sigma = 1 - t` (Lipman et al. 2023; Liu et al. 2023).

    >>> path = CondOT()
    >>> s = path.sample(torch.randn(4, 2), data, torch.rand(4))
    >>> s.dx_t  # = data - noise
    """

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def log_snr(self, t: Tensor) -> Tensor:
        return 2.0 * (torch.log(t) - torch.log1p(-t))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return torch.sigmoid(log_snr / 2.0)
