"""DPS: diffusion posterior sampling by the gradient of the residual through the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.posterior import PosteriorGuidance
from flowforge.guidance.score import add_score, state_gradient


@dataclass(frozen=True)
class DPS(PosteriorGuidance):
    """Diffusion posterior sampling (Chung et al. 2023, Algorithm 1). Hook: on the prediction.

    The likelihood `p(y | x_t)` is approximated by `p(y | x_1 = D(x_t))`, the Tweedie estimate
    plugged into the noise model, and its gradient is taken through the network:

        g = -zeta grad_{x_t} ||y - A D(x_t)||^2 / (2 sigma_y^2)      (weighting="gaussian", eq. 16)
        g = -zeta grad_{x_t} ||y - A D(x_t)||^2 / ||y - A D(x_t)||   (weighting="normalized")
        score <- score + g

    "normalized" is the paper's practical step size `zeta_i = zeta / ||y - A D||`, which works
    for noiseless measurements too; the paper applies it per DDPM step to the state, here it is
    a score term, so the values of zeta differ. DPS ignores the uncertainty of D(x_t), so it
    over-trusts the measurement at high noise (biased, and stiff for small sigma_y: see
    `pigdm`, which accounts for it).

    Parameters: `scale` zeta >= 0 (normalized, the default: about 0.3-3 for data of unit scale;
    gaussian: 1 is the plug-in likelihood, smaller values are steadier); `weighting`.

    >>> flowforge.sample(model, noise, ..., guidance=DPS(measurement=Measurement(op, y)))
    """

    scale: Annotated[float, Field(ge=0, description="zeta: guidance weight")] = 1.0
    weighting: Annotated[
        Literal["gaussian", "normalized"],
        Field(description="1/||y - A D|| (normalized) or 1/(2 sigma_y^2) (gaussian)"),
    ] = "normalized"

    requires_grad = True
    name = "dps"

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        m = self.given()
        if self.weighting == "gaussian" and m.noise_std == 0:
            raise InvalidArgumentError(
                "dps with weighting='gaussian' divides by the noise variance, which is 0 for "
                "this operator: use weighting='normalized', or an operator with noise_std > 0"
            )
        if self.scale == 0:
            return pred
        sq = m.residual(pred.data).square().flatten(1).sum(1)
        if self.weighting == "gaussian":
            objective = sq / (2 * m.noise_std**2)
        else:
            objective = sq / sq.detach().sqrt().clamp_min(torch.finfo(sq.dtype).tiny)
        return add_score(pred, -self.scale * state_gradient(pred, objective, self.name))
