"""PnP-Flow: plug-and-play restoration, the flow model's data prediction as the denoiser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics, Prediction
from flowforge.guidance.consistency import step_data_estimate
from flowforge.guidance.linalg import gram_norm
from flowforge.guidance.posterior import PosteriorGuidance
from flowforge.tensors import expand_like, matching


@dataclass(frozen=True)
class PnPFlow(PosteriorGuidance):
    """PnP-Flow (Martin et al. 2025, Algorithm 1). Hooks: after the step; on the prediction.

    A plug-and-play splitting along the solve's grid `t_0 < t_1 < ...`: the estimate `x` takes
    a gradient step on the data fidelity `F(x) = ||A x - y||^2 / 2`, is carried back to time
    `t_k` on the path with fresh noise, and is denoised by the model's data prediction `D`:

        z   = x + gamma_k A^T (y - A x),     gamma_k = lr r(t_k)^exponent
        x~  = alpha(t_k) z + sigma(t_k) eps,  eps ~ N(0, I)
        x   <- D(x~, t_k)  (averaged over `samples` draws of eps)

    `r = sigma / (alpha + sigma)` is the noise fraction, `1 - t` on cond_ot as in the paper's
    `gamma = lr (1 - t)^exponent`, so the same settings work on any affine path. The state of
    the solve is `x~`: the solver's evaluation at the start of each step is the denoiser call
    (read on the prediction hook; the step's own update is replaced), so `euler` or `ddim`
    spend exactly one model call per iteration; the result is `D` of the last one. The first
    denoised point is the solve's initial noise, which at the noise end of the path is `x~_0`
    whatever the initial estimate. Each extra draw (`samples` > 1) is one more model call per
    step, not counted in `nfe`. A point estimate, not a posterior sampler: samples spread far
    less than the posterior.

    Parameters: `lr` > 0 (the paper: 1, for `A^T A` of norm about 1); `normalize` (lr in
    units of `1 / L`, `L = max eig(A^T A)` the fidelity gradient's Lipschitz constant, found by
    power iteration once per solve: one setting for every operator, e.g. lr 0.5); `exponent`
    >= 0 (the paper: 0.5; 0: a constant step); `samples` >= 1 (noise draws per denoiser call;
    the paper: 5).

    >>> flowforge.sample(model, noise, ..., solver="euler", nfe=100, generator=g,
    ...                  guidance=PnPFlow(measurement=m))
    """

    lr: Annotated[float, Field(gt=0, description="gamma at pure noise: the fidelity step")] = 1.0
    exponent: Annotated[
        float, Field(ge=0, description="gamma = lr r(t)^exponent, r the noise fraction")
    ] = 0.5
    samples: Annotated[int, Field(ge=1, le=64, description="noise draws per denoiser call")] = 1
    normalize: Annotated[
        bool, Field(description="lr in units of 1 / max eig(A^T A) (power iteration)")
    ] = False

    name = "pnp_flow"

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        mem = dynamics.memory(self)
        point = mem.get("x")
        first = point is None and "data" not in mem  # the solve's first call: at x~_0
        if first or (point is not None and pred.x_t.data_ptr() == point.data_ptr()):
            mem["data"] = pred.data.detach()
        return pred

    def after_step(self, x: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        m = self.given()
        mem = dynamics.memory(self)
        data = mem.pop("data", None)
        point = mem.get("x")
        if point is None:
            data = step_data_estimate(x, t, dynamics) if data is None else data
        else:
            if data is None:  # the solver did not evaluate at the PnP point
                data = self._denoise(point, mem["t"], dynamics)
            data = self._average(data, mem, dynamics)
        step = dynamics.step
        if step is not None and step.last:
            return data.to(x.dtype)
        path = dynamics.path
        gamma = self.lr * (path.sigma(t) / (path.alpha(t) + path.sigma(t))) ** self.exponent
        gamma = expand_like(gamma.to(data.dtype), data)
        if self.normalize:
            if "lipschitz" not in mem:
                op = m.operator
                mem["lipschitz"] = gram_norm(lambda v: op.adjoint(op.forward(v)), data)
            gamma = gamma / mem["lipschitz"]
        z = data + gamma * m.operator.adjoint(m.residual(data))
        x_next = self._interpolate(z, t, dynamics).to(x.dtype)
        mem.update(x=x_next, t=t, z=z)
        return x_next

    def _average(self, data: Tensor, mem: dict, dynamics: Dynamics) -> Tensor:
        """The denoiser averaged over `samples` noise draws at the last PnP point's `z`."""
        if self.samples == 1:
            return data
        total = data.clone()
        for _ in range(self.samples - 1):
            point = self._interpolate(mem["z"], mem["t"], dynamics).to(data.dtype)
            total += self._denoise(point, mem["t"], dynamics).to(data.dtype)
        return total / self.samples

    def _denoise(self, point: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        raw = dynamics.network(point, t)
        return Prediction(raw, dynamics.prediction, point, t, dynamics.path).data.detach()

    def _interpolate(self, z: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        """`alpha(t) z + sigma(t) eps`: `z` carried to time `t` with fresh noise."""
        step = dynamics.step
        generator = None if step is None else step.generator
        device = z.device if generator is None else generator.device
        eps = matching(torch.randn(z.shape, generator=generator, dtype=z.dtype, device=device), z)
        path = dynamics.path
        return expand_like(path.alpha(t), z) * z + expand_like(path.sigma(t), z) * eps
