"""Weighted conditional flow matching: independent pairs reweighted by a Gibbs kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.training.couplings.base import Coupled, Coupling, check_pairable


@dataclass(frozen=True)
class WeightedCFM(Coupling):
    """W-CFM (Calvo-Ordonez et al. 2025): pair `i` weighs `exp(-||x_1[i] - x_0[i]||^2 / eps_abs)`,
    self-normalised to mean 1 over the batch; no OT solve.

    The weights tilt the independent coupling towards the entropic OT plan (exactly, up to the
    plan's marginal scalings, which W-CFM drops: the marginals are slightly biased, less so for
    larger `eps`). `eps_abs = eps * mean(cost)` of the batch, as in `sinkhorn`. The cost of a
    step is that of independent pairs; smaller `eps` straightens more but leaves fewer
    effective samples per batch.

    >>> batch = WeightedCFM(eps=0.5).pair(x_0, x_1, generator=gen)   # batch.weight.mean() == 1
    """

    eps: Annotated[
        float, Field(gt=0, description="Gibbs kernel temperature, relative to the mean cost")
    ] = 0.5

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        with torch.no_grad():
            check_pairable(x_0, x_1)
            dtype = torch.promote_types(x_1.dtype, torch.float32)
            cost = (x_1 - x_0).reshape(x_1.shape[0], -1).to(dtype).pow(2).sum(1)
            scale = self.eps * cost.mean().clamp_min(torch.finfo(cost.dtype).tiny)
            weight = x_1.shape[0] * torch.softmax(-cost / scale, dim=0)
        return Coupled(x_0, x_1, weight)
