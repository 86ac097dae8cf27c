"""Entropic minibatch OT: a batched log-domain Sinkhorn on the device, then pairs from the plan."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.training.couplings.base import Coupled, Coupling, squared_distances


def sinkhorn_log_plan(
    cost: Tensor,
    eps: float,
    *,
    iters: int = 200,
    tol: float | None = None,
    check_every: int = 10,
) -> Tensor:
    """Log of the entropic OT plan between uniform marginals, `cost (..., n, m)` -> same shape.

    Minimises `<P, C> - eps_abs H(P)` with `eps_abs = eps * mean(C)` per problem (so `eps` is
    free of the data's scale), rows summing to `1/n` and columns to `1/m`. Alternating updates
    of the scaled dual potentials, each a `logsumexp` (stable for any `eps`), batched over the
    leading dimensions. Runs `iters` iterations; with `tol`, stops early once the largest L1
    error of the row marginals is below it, checked every `check_every` iterations (the only
    host synchronisations). Columns are exact after each iteration.
    """
    n, m = cost.shape[-2], cost.shape[-1]
    scale = eps * cost.mean(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cost.dtype).tiny)
    kernel = -cost / scale
    log_a, log_b = -math.log(n), -math.log(m)
    f = torch.zeros(cost.shape[:-1], dtype=cost.dtype, device=cost.device)
    g = torch.zeros((*cost.shape[:-2], m), dtype=cost.dtype, device=cost.device)
    for it in range(1, iters + 1):
        f = log_a - torch.logsumexp(kernel + g[..., None, :], dim=-1)
        g = log_b - torch.logsumexp(kernel + f[..., :, None], dim=-2)
        if tol is not None and it % check_every == 0 and it < iters:
            rows = torch.logsumexp(kernel + g[..., None, :], dim=-1) + f
            if float((rows.exp() - 1.0 / n).abs().sum(-1).max()) < tol:
                break
    return kernel + f[..., :, None] + g[..., None, :]


def partners(log_plan: Tensor, pairing: str, generator: torch.Generator) -> Tensor:
    """Each row's column `(..., n)` from a log plan `(..., n, m)`, without a host sync.

    `sample`: a draw from the row's conditional `P(i | j)` by the Gumbel-max trick
    (`argmax(log P + G)` with standard Gumbel noise `G` from `generator`); `argmax`: the most
    likely column.
    """
    if pairing == "argmax":
        return log_plan.argmax(dim=-1)
    u = torch.rand(
        log_plan.shape, generator=generator, device=log_plan.device, dtype=log_plan.dtype
    )
    gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))
    return (log_plan + gumbel).argmax(dim=-1)


@dataclass(frozen=True)
class Sinkhorn(Coupling):
    """Entropic OT (Tong et al. 2024): each data point gets a noise partner from the plan's row.

    The plan is computed by `sinkhorn_log_plan` on the batch's squared distances, entirely on
    the device. `pairing: sample` draws the partner of data point `j` from the plan's
    conditional `P(i | j)` by the Gumbel-max trick with the training generator (every data
    point appears once, noise may repeat; the pairs are a stratified sample of the plan);
    `argmax` takes the most likely partner. As `eps` -> 0 the plan tends to the exact OT
    assignment, and as `eps` grows to the independent coupling.

    >>> Sinkhorn(eps=0.05, iters=100).pair(x_0, x_1, generator=gen)
    """

    eps: Annotated[
        float, Field(gt=0, description="entropic regularisation, relative to the mean cost")
    ] = 0.05
    iters: Annotated[int, Field(ge=1, description="Sinkhorn iterations (the most, with tol)")] = 100
    tol: Annotated[
        float | None,
        Field(gt=0, description="stop when the row marginals' L1 error is below; null: never"),
    ] = None
    check_every: Annotated[
        int, Field(ge=1, description="iterations between tolerance checks (host syncs)")
    ] = 10
    pairing: Literal["sample", "argmax"] = "sample"

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        with torch.no_grad():
            cost = squared_distances(x_1, x_0)
            log_plan = sinkhorn_log_plan(
                cost, self.eps, iters=self.iters, tol=self.tol, check_every=self.check_every
            )
            partner = partners(log_plan, self.pairing, generator)
        return Coupled(x_0[partner], x_1)
