"""The conditional optimal-transport (rectified flow) path: straight lines from noise to data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath, PathSample
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class CondOT(AffinePath):
    """`alpha = t`, `sigma = 1 - t` (Lipman et al. 2023; Liu et al. 2023).

    >>> path = CondOT()
    >>> s = path.sample(torch.randn(4, 2), data, torch.rand(4))
    >>> s.dx_t  # = data - noise

    `time_grid="auto"` is `uniform` here for every solver: log-SNR is infinite at both ends, so
    `logsnr`/`edm` grids spend a first step on pure noise -> sigma/alpha = 80 and a last one on
    0.002 -> data, several times less accurate at 3-20 NFE (docs/solvers.md, "Time grids").
    """

    recommended_grid: ClassVar[str | None] = "uniform"

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        # AffinePath.sample with the constant derivatives folded in (the same floats: 1 * x_1
        # + (-1) * x_0 is x_1 - x_0), three kernels fewer per training step
        if not t.dtype == x_0.dtype == x_1.dtype:
            return super().sample(x_0, x_1, t)  # type promotion as there
        a = expand_like(t, x_1)
        x_t = a * x_1 + (1.0 - a) * x_0
        return PathSample(x_0, x_1, t, x_t, x_1 - x_0)

    def log_snr(self, t: Tensor) -> Tensor:
        return 2.0 * (torch.log(t) - torch.log1p(-t))

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return torch.sigmoid(log_snr / 2.0)
