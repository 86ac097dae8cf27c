"""Negative log-likelihood of held-out data under the trained flow (exact divergence ODE)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.likelihood import log_likelihood
from flowforge.metrics.base import Metric, MetricContext


@dataclass(frozen=True)
class NLL(Metric):
    """Mean -log p(x) over the test set in data units, via `flowforge.likelihood.log_likelihood`.

    The model lives in standardised space, so `log p_data(x) = log p_model(z) - sum(log std)`.
    Integrates in float64 from the sampling `t_span` (or the path's) with `solver` and `nfe`.

    Keys: `nll` (nats per sample), `nll_bits_per_dim`, and `nll_exact` (the true data NLL of the
    same points) for datasets whose density is known.
    """

    solver: Annotated[str, Field(description="a registered ODE solver")] = "rk4"
    nfe: Annotated[int, Field(ge=1, description="model evaluations of the likelihood ODE")] = 80
    max_points: Annotated[
        int | None, Field(ge=1, description="evaluate on at most this many test points")
    ] = None
    batch_size: Annotated[int, Field(ge=1, description="points per ODE solve")] = 4096

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        test = ctx.test[: self.max_points]
        field = _float64(ctx.field)
        parts = []
        for chunk in torch.split(test, self.batch_size):
            z = ctx.standardizer.encode(chunk.to(ctx.device, torch.float64))
            parts.append(
                log_likelihood(
                    field,
                    z,
                    path=ctx.path,
                    prediction=ctx.prediction,
                    solver=self.solver,
                    nfe=self.nfe,
                    t_span=ctx.t_span,
                ).cpu()
            )
        logp = torch.cat(parts) + ctx.standardizer.log_abs_det()
        nll = float(-logp.mean())
        out = {"nll": nll, "nll_bits_per_dim": nll / (test[0].numel() * math.log(2))}
        exact = ctx.dataset.log_prob(test.double())
        if exact is not None:
            out["nll_exact"] = float(-exact.mean())
        return out


def _float64(field: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """Run a float32 model on float64 inputs (the solver state stays float64)."""

    def call(x: Tensor, t: Tensor) -> Tensor:
        return field(x.float(), t.float()).double()

    return call
