"""PiGDM: pseudoinverse-guided posterior sampling with the data estimate's uncertainty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field

from flowforge.field import Dynamics, Prediction
from flowforge.guidance.posterior import PosteriorGuidance, data_variance
from flowforge.guidance.score import add_score, data_vjp


@dataclass(frozen=True)
class PiGDM(PosteriorGuidance):
    """Pseudoinverse-guided diffusion models (Song et al. 2023, eq. 8). Hook: on the prediction.

    The data given `x_t` is taken as `N(D(x_t), r_t^2 I)`, so `y | x_t` is Gaussian with
    covariance `r_t^2 A A^T + sigma_y^2 I`, and its score is a vector-Jacobian product:

        r_t^2 = v sigma_t^2 / (alpha_t^2 v + sigma_t^2)      (v = prior_var, 1 in the paper)
        g = zeta (d D / d x_t)^T A^T (r_t^2 A A^T + sigma_y^2 I)^{-1} (y - A D(x_t))
        score <- score + g

    The inverse is exact through the operator's SVD (`gram_solve`), conjugate gradients
    otherwise; noiseless it is `A^+ (y - A D) / r_t^2` (the paper's pseudoinverse form). At the
    data end r_t -> 0 and the guidance stiffens, so few-step solves of noiseless problems may
    need smaller zeta.

    Parameters: `scale` zeta >= 0 (1: the paper's approximation); `prior_var` v > 0, the data's
    variance per coordinate (1 for standardised data).

    >>> flowforge.sample(model, noise, ..., guidance=PiGDM(measurement=Measurement(op, y)))
    """

    scale: Annotated[float, Field(ge=0, description="zeta: guidance weight")] = 1.0
    prior_var: Annotated[
        float, Field(gt=0, description="data variance per coordinate in r_t^2 (1: standardised)")
    ] = 1.0

    requires_grad = True
    name = "pigdm"

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        m = self.given()
        if self.scale == 0:
            return pred
        var = data_variance(pred.path, pred.t, self.prior_var).to(pred.value.dtype)
        var = var.clamp_min(torch.finfo(var.dtype).eps)
        u = m.pulled_residual(pred.data.detach(), var)
        return add_score(pred, self.scale * data_vjp(pred, u, self.name))
