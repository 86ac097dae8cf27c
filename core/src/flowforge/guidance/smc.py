"""Twisted sequential Monte Carlo: the batch as a particle population, exact as it grows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.posterior import PosteriorGuidance, data_variance
from flowforge.paths.base import AffinePath
from flowforge.solvers.reverse_sde import ReverseSDE, noise_exponent
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class SMC(PosteriorGuidance):
    """Twisted SMC over the solver's steps (a Feynman-Kac corrector). Hook: on the population.

    The batch is split into populations of `particles`. Each step moves every particle by a
    proposal kernel q_k, then reweights it by the change of a twisting potential, the
    likelihood of y given the data estimate as in PiGDM (`Measurement.log_likelihood`), times
    the ratio of the model's kernel p_k to the proposal:

        log G_k = log p~_k(y | x_k) - log p~_{k-1}(y | x_{k-1})
                  + log p_k(x_k | x_{k-1}) - log q_k(x_k | x_{k-1}),        p~_0 = 1
        p~_k(y | x) = N(y; A D(x, t_k), sigma_y^2 I + r_k^2 A A^T),  r_k^2 as in pigdm
        resample (systematic or multinomial, from the solve's generator) when
        ESS = 1 / sum_i w_i^2 < ess_threshold * particles, and always after the last step.

    Proposals (`proposal`):
    - "model": the solver's own step, q = p (the last factor is 1): any one-step solver;
    - "twisted" (TDS, Wu et al. 2023, sec. 3.2): the solver's step with the twisted score
      `score + grad_x log p~_k(y | x)` (the gradient taken through the network, as pigdm does),
      which moves particles toward y before they are weighed, so far fewer are lost to
      resampling. It needs the step's Gaussian law: `reverse_sde` with eta > 0, whose step is
      `x' = c_x x + c_d D + s xi` with `c_x = (sigma'/sigma) e^{-kappa}`,
      `c_d = alpha' (1 - e^{-h - kappa})`, `s = sigma' sqrt(1 - e^{-2 kappa})` (see
      `flowforge.solvers.reverse_sde`); the score change shifts the mean by
      `delta = c_d sigma^2 / alpha * grad`, and with `e = x' - mean_q`
      `log p / q = -(2 e.delta + |delta|^2) / (2 s^2)`, exactly. The last step (into
      sigma = 0, where the step is deterministic) is left untwisted;
    - "auto" (default): "twisted" where the solver is `reverse_sde` with eta > 0, else "model".

    Why it is exact as particles grow: the potentials telescope, so a particle path's total
    weight is `p~_K(y | x_K)` times `p / q` of its path; where sigma(t_K) = 0 the data estimate
    is the sample itself and r_K = 0, so this is the exact likelihood `p(y | x_K)`. The
    Feynman-Kac target at the end is therefore `q(x_K) p(y | x_K)`, with `q` the law of the
    solver's unguided output, i.e. the posterior under the model's prior, whatever the
    proposals and twists (they only set the variance). Resampled particle systems converge to
    it in the number of particles N, with O(1/N) bias and O(1/sqrt(N)) error (Del Moral 2004,
    ch. 7; Wu et al. 2023 "TDS", Thm. 1, for the twisted case). The returned particles are
    equally weighted posterior samples.

    Use a stochastic solver (reverse_sde, euler_maruyama) so that resampled copies spread
    again; an ODE solver is still consistent but only reweights its trajectories. Solvers that
    carry past evaluations between steps (`Multistep`) are refused: their history would not
    follow the resampled particles. Needs sigma_y > 0. Other guidance that changes
    predictions (dps, cfg, ...) changes the proposal, which this correction does not account
    for. Model calls: the potential needs D at each new state; it is evaluated once (with one
    backward pass for the twisted proposal) and handed to the solver's next step
    (`Dynamics.reuse`), so solvers that evaluate at a step's start make no extra calls (all
    fixed-step ones in core): `nfe` model evaluations per particle, as for one sample of an
    unguided solve.

    Parameters: `particles` N >= 2 dividing the batch (None: the whole batch, one population);
    `ess_threshold` in (0, 1] (1: resample every step); `resampling`; `prior_var` > 0 (the
    data variance in r_k^2); `proposal`.

    >>> y1 = y.expand(1024, -1)   # 16 populations of 64 particles, one measurement
    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver="reverse_sde", nfe=100, generator=g,
    ...                  guidance=SMC(particles=64, measurement=Measurement(op, y1)))
    """

    particles: Annotated[
        int | None, Field(ge=2, description="particles per population (None: the batch)")
    ] = None
    ess_threshold: Annotated[
        float, Field(gt=0, le=1, description="resample when ESS < threshold * particles")
    ] = 0.5
    resampling: Annotated[
        Literal["systematic", "multinomial"], Field(description="resampling scheme")
    ] = "systematic"
    prior_var: Annotated[
        float, Field(gt=0, description="data variance per coordinate in the twist's r_t^2")
    ] = 1.0
    proposal: Annotated[
        Literal["auto", "twisted", "model"],
        Field(description="twisted (TDS; reverse_sde with eta > 0), model (the solver's step)"),
    ] = "auto"

    name = "smc"

    def on_population(
        self, x: Tensor, log_weights: Tensor, t: Tensor, dynamics: Dynamics
    ) -> tuple[Tensor, Tensor]:
        m = self.given()
        batch = x.shape[0]
        n = batch if self.particles is None else self.particles
        if batch % n:
            raise InvalidArgumentError(
                f"smc: the batch of {batch} does not split into populations of particles={n}; "
                "use a batch size that is a multiple of particles"
            )
        step = dynamics.step
        last = step is not None and step.last
        # Twist the next step unless it is the last one (deterministic into sigma = 0).
        twist_next = self._twisted(dynamics) and step is not None and step.index + 2 < step.count
        mem = dynamics.memory(self)
        x, correction = self._shift(x, t, mem.pop("proposed", None), dynamics)
        path = dynamics.path
        var = data_variance(path, t, self.prior_var).to(x.dtype)
        with torch.enable_grad() if twist_next else torch.no_grad():
            x_in = x.detach().requires_grad_(True) if twist_next else x
            raw = dynamics.network(x_in, t)
            data = Prediction(raw, dynamics.prediction, x_in, t, path).data
            data = torch.where(expand_like(path.sigma(t) == 0, x), x_in, data)
            twist = m.log_likelihood(data, var)
            grad = torch.autograd.grad(twist.sum(), x_in)[0] if twist_next else None
        twist, raw, data = twist.detach().to(log_weights.dtype), raw.detach(), data.detach()
        log_weights = log_weights + twist - mem.get("twist", torch.zeros_like(twist))
        if correction is not None:
            log_weights = log_weights + correction.to(log_weights.dtype)
        groups = log_weights.reshape(batch // n, n)
        w = torch.softmax(groups, dim=1)
        resample = (1 / w.square().sum(1) < self.ess_threshold * n) | last
        local = self._ancestors(w, None if step is None else step.generator)
        offset = torch.arange(0, batch, n, device=x.device)[:, None]
        own = torch.arange(batch, device=x.device).reshape(batch // n, n)
        idx = torch.where(resample[:, None], local + offset, own).reshape(batch)
        x, raw = x[idx], raw[idx]
        mem["twist"] = twist[idx]
        log_weights = torch.where(resample[:, None], torch.zeros_like(groups), groups).reshape(
            batch
        )
        if grad is not None:
            mem["proposed"] = (x, t, data[idx], grad[idx])
        if not last:
            dynamics.reuse(x, t, raw)
        return x, log_weights

    def _twisted(self, dynamics: Dynamics) -> bool:
        """Whether this solve uses the twisted proposal (see the class docstring)."""
        solver = dynamics.solver
        fits = isinstance(solver, ReverseSDE) and solver.eta > 0
        if self.proposal == "twisted" and not fits and solver is not None:
            raise InvalidArgumentError(
                f"smc with proposal='twisted' weighs particles by the density of the solver's "
                f"Gaussian step, which it knows for reverse_sde with eta > 0; got solver "
                f"{getattr(solver, 'name', type(solver).__name__)!r}. Use solver='reverse_sde' "
                "(eta > 0), or proposal='model' to keep this solver's own steps"
            )
        return self.proposal != "model" and fits

    def _shift(
        self,
        x: Tensor,
        t: Tensor,
        proposed: tuple[Tensor, Tensor, Tensor, Tensor] | None,
        dynamics: Dynamics,
    ) -> tuple[Tensor, Tensor | None]:
        """The twisted proposal's move of the solver's output `x` at `t`, and `log p - log q`
        `(B,)` (None when the step was not twisted).

        `proposed = (x_a, t_a, D(x_a), grad)`: the step's start, its data prediction and the
        twist's gradient there. The solver's step is `N(mu_p, s^2 I)` with
        `mu_p = c_x x_a + c_d D`; adding `delta = s^2 grad` makes it `N(mu_p + delta, s^2 I)`.
        """
        if proposed is None:
            return x, None
        x_a, t_a, data, grad = proposed
        c_x, c_d, s = reverse_sde_kernel(dynamics.solver, dynamics.path, t_a, t)
        c_x, c_d, s = (expand_like(c.to(x.dtype), x) for c in (c_x, c_d, s))
        var = s.square()
        delta = var * grad.to(x.dtype)
        e = x - (c_x * x_a + c_d * data)
        quad = (2 * e * delta + delta.square()) / torch.where(var > 0, 2 * var, 1.0)
        return x + delta, -quad.flatten(1).sum(1)

    def _ancestors(self, w: Tensor, generator: torch.Generator | None) -> Tensor:
        """Ancestor indices `(P, N)` within each population drawn from its weights `w (P, N)`."""
        device = w.device if generator is None else generator.device
        p, n = w.shape
        if self.resampling == "multinomial":
            draws = torch.multinomial(_to(w, device), n, replacement=True, generator=generator)
            return _to(draws, w.device)
        u = _to(torch.rand(p, 1, generator=generator, dtype=w.dtype, device=device), w.device)
        points = (u + torch.arange(n, dtype=w.dtype, device=w.device)) / n
        cdf = torch.cumsum(w, dim=1)
        return torch.searchsorted(cdf, points).clamp(max=n - 1)


def reverse_sde_kernel(
    solver: ReverseSDE, path: AffinePath, t_a: Tensor, t_b: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The Gaussian law of a `reverse_sde` step from `t_a` to `t_b` (`(B,)` each), given the
    data prediction D at the start: `x_b ~ N(c_x x_a + c_d D, s^2 I)`; returns `(c_x, c_d, s)`.

    With the half log-SNR `l = log(alpha / sigma)`, `h = l_b - l_a` and
    `kappa = eta |W(l_b) - W(l_a)|` (`flowforge.solvers.reverse_sde`):
    `c_x = (sigma_b / sigma_a) e^{-kappa}`, `c_d = alpha_b (1 - e^{-h - kappa})`,
    `s = sigma_b sqrt(1 - e^{-2 kappa})`. For steps that end at sigma_b > 0.
    """
    a_a, s_a = path.alpha(t_a), path.sigma(t_a)
    a_b, s_b = path.alpha(t_b), path.sigma(t_b)
    lam_a, lam_b = torch.log(a_a) - torch.log(s_a), torch.log(a_b) - torch.log(s_b)
    kappa = solver.eta * noise_exponent(lam_a, lam_b, solver.diffusion)
    c_x = s_b / s_a * torch.exp(-kappa)
    c_d = a_b * -torch.expm1(-(lam_b - lam_a) - kappa)
    s = s_b * torch.sqrt(-torch.expm1(-2 * kappa))
    return c_x, c_d, s


def _to(t: Tensor, device: torch.device) -> Tensor:
    """`t` on `device`: itself when it is there already (no copy)."""
    return t if t.device == device else t.to(device)
