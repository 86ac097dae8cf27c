"""FlowChef: gradient-free steering of a velocity field toward the measurement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.guidance.consistency import step_data_estimate
from flowforge.guidance.posterior import PosteriorGuidance


@dataclass(frozen=True)
class FlowChef(PosteriorGuidance):
    """FlowChef (Patel et al. 2024, Algorithm 1). Hook: after the step.

    For straight (rectified) flows the data estimate `D = x_t + (1 - t) v` moves one-for-one
    with `x_t` when the velocity is held fixed, so the gradient of a loss of `D` with respect
    to `x_t` is its gradient with respect to `D`: no backpropagation through the network.
    Every step but the last is followed by

        x' <- x' - s grad_D L(D),     L(D) = mean_i ((A D - y)_i^2),  grad_D L = 2 A^T (A D - y) / m

    with `D` the step's data estimate (the reference code shifts the state before the velocity
    step with the same gradient, which is the same update). Gradient-free and cheap, but not a
    posterior sampler: it pulls samples toward consistency with a fixed step.

    Parameters: `scale` s >= 0, the step on the state per solver step (the paper's
    gradient_scale; with the mean over the m measured entries, s ~ m / 100 moves each measured
    entry about 2% of its residual per step).

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity", solver="euler",
    ...                  nfe=50, guidance=FlowChef(scale=5.0, measurement=m))
    """

    scale: Annotated[float, Field(ge=0, description="s: step on the state per solver step")] = 1.0

    name = "flowchef"

    def after_step(self, x: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        m = self.given()
        if self.scale == 0 or (dynamics.step is not None and dynamics.step.last):
            return x
        data = step_data_estimate(x, t, dynamics)
        res = m.residual(data)
        grad = -2.0 * m.operator.adjoint(res) / res[0].numel()
        return x - self.scale * grad
