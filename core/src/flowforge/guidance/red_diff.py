"""RED-diff: variational posterior sampling, the mean optimised along the noise schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics, Prediction
from flowforge.guidance.consistency import step_data_estimate
from flowforge.guidance.posterior import PosteriorGuidance
from flowforge.tensors import expand_like, matching

BETAS = (0.9, 0.99)  # Adam's moment decays in the paper's experiments


@dataclass(frozen=True)
class REDDiff(PosteriorGuidance):
    """RED-diff (Mardani et al. 2023, Algorithm 1). Hooks: after the step; on the prediction.

    The posterior is approximated by `N(mu, 0)`, and `mu` minimises the measurement loss plus a
    score-matching regulariser over the noise levels, visited from noise to data along the
    solve's grid, each with fresh noise eps:

        x_t = alpha_t mu + sigma_t eps
        grad = A^T (A mu - y) / m + lam (mu - D(x_t, t)) / n
        mu <- Adam(mu, grad; lr, betas = (0.9, 0.99))

    The second term is the paper's `lambda_t (eps_hat - eps)` with its weighting
    `lambda_t = lam sigma_t / alpha_t` (eps_hat - eps = alpha / sigma (mu - D)); m and n count
    the entries of y and x (the paper's means). The state of the solve is `x_t`: the solver
    supplies the model's evaluation there (read on the prediction hook; the step's own update
    is replaced), so every fixed-step solver that evaluates at the start of its step costs no
    extra call. `mu` starts at the first data estimate; the result is `mu` at the last step.
    It is mode-seeking: samples spread far less than the posterior.

    Parameters: `lam` >= 0 (the paper: 0.25); `lr` > 0 (Adam's step, about 0.1-0.5 for data
    of unit scale).

    >>> flowforge.sample(model, noise, ..., solver="euler", nfe=100, generator=g,
    ...                  guidance=REDDiff(measurement=m))
    """

    lam: Annotated[float, Field(ge=0, description="weight of the score regulariser")] = 0.25
    lr: Annotated[float, Field(gt=0, description="Adam step size on mu")] = 0.1

    name = "red_diff"

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        mem = dynamics.memory(self)
        point = mem.get("x")
        if point is not None and pred.x_t.data_ptr() == point.data_ptr():
            mem["data"] = pred.data.detach()
        return pred

    def after_step(self, x: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        m = self.given()
        mem = dynamics.memory(self)
        if "mu" in mem:
            mu, data = mem["mu"], mem.pop("data", None)
            if data is None:  # the solver did not evaluate at the RED-diff point
                point, t_prev = mem["x"], mem["t"]
                raw = dynamics.network(point, t_prev)
                data = Prediction(raw, dynamics.prediction, point, t_prev, dynamics.path).data
        else:
            mu = data = step_data_estimate(x, t, dynamics)
        res = m.residual(mu)
        grad = -m.operator.adjoint(res) / res[0].numel() + self.lam * (mu - data) / mu[0].numel()
        mu = self._adam(mem, mu, grad)
        step = dynamics.step
        generator = None if step is None else step.generator
        device = x.device if generator is None else generator.device
        eps = matching(torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device), x)
        path = dynamics.path
        alpha, sigma = expand_like(path.alpha(t), x), expand_like(path.sigma(t), x)
        x_next = (alpha * mu + sigma * eps).to(x.dtype)
        mem.update(mu=mu, x=x_next, t=t)
        return x_next

    def _adam(self, mem: dict, mu: Tensor, grad: Tensor) -> Tensor:
        """One Adam step (Kingma & Ba 2015) on `mu`, its moments kept in `mem`."""
        b1, b2 = BETAS
        k = mem.get("k", 0) + 1
        m1 = b1 * mem.get("m1", torch.zeros_like(mu)) + (1 - b1) * grad
        m2 = b2 * mem.get("m2", torch.zeros_like(mu)) + (1 - b2) * grad.square()
        mem.update(k=k, m1=m1, m2=m2)
        m1_hat, m2_hat = m1 / (1 - b1**k), m2 / (1 - b2**k)
        return mu - self.lr * m1_hat / (m2_hat.sqrt() + 1e-8)
