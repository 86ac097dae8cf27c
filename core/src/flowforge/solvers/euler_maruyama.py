"""Euler-Maruyama on the marginal-preserving reverse SDE: the textbook stochastic baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import StepInfo
from flowforge.solvers.euler import Euler
from flowforge.solvers.explicit_rk import stage_conversions
from flowforge.solvers.exponential import host_schedule
from flowforge.solvers.reverse_sde import (
    Diffusion,
    NoiseState,
    SDEState,
    StochasticSolver,
    diffusion_rate,
    step_factors,
)
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class EulerMaruyama(StochasticSolver):
    """`x_b = x_a + dt [v + sgn(dt) g^2 / 2 score] + g dW`, g from `reverse_sde`'s family.

    With `g(t)^2 = 2 eta sigma^2 w dl/dt` (see `flowforge.solvers.reverse_sde`), evaluated at the
    step's start `t_a`; `dW = W(t_b) - W(t_a)` from the seeded Brownian tree
    (or, with `noise="iid"`, `sqrt(|dt|)` times a fresh seeded normal). For t_b < t_a the
    sign flips the score term, giving the forward (noising) SDE with the same marginals.
    nfe = steps; the end point is never evaluated; eta = 0 is `euler` exactly (same numbers).

    Order 1: weak order 1, and strong order 1 too, because the noise is additive (g depends on
    t only, so the Milstein correction vanishes; Kloeden & Platen 1992, sec. 10.3): the 1/2 of
    the textbook is for state-dependent noise. The drift is stiff near the data end (rate
    ~ eta / (1 - t) for cond_ot), so eta above ~2 needs small steps there. The default diffusion
    is "damped": the "ddpm" reference is infinite where alpha = 0, so with it Euler-Maruyama
    cannot start from pure noise (use `reverse_sde`, or a `t_span` that starts after t = 0).

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver="euler_maruyama", nfe=200, generator=g)
    """

    diffusion: Annotated[
        Diffusion, Field(description="reference diffusion: 'damped' (finite at pure noise)")
    ] = "damped"

    order = 1
    name = "euler_maruyama"

    def start(self, f: Dynamics, x: Tensor, grid: Tensor, noise: NoiseState | None) -> SDEState:
        """At eta = 0, `euler`'s state (its velocity coefficients), so the numbers are euler's;
        else the step's coefficients `(a, b)` on `(x, output)` and the noise scaled by `c`
        (`coefficients`)."""
        if self.eta == 0:
            return SDEState(Euler().init(f, x, grid), None, noise)
        a, b, c = self.coefficients(f, grid)
        return SDEState(None, (step_factors(a, x), step_factors(b, x)), noise.scaled(c, x, grid))

    def coefficients(self, f: Dynamics, grid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per step, `(a, b, c)` `(S, B or 1)` on the host with `x_next = a x + b output + c xi`
        for the model's prediction kind (`xi` the step's unit noise), from the grid's alpha,
        sigma and their derivatives. The noise comes scaled by `c` (`NoiseState.scaled`), so a
        step is two tensor ops: `xi c + a x`, then `+ b output`."""
        s = host_schedule(f, grid)
        t, dt = s.t[:-1], s.t[1:] - s.t[:-1]
        p_noise, q_noise = (v[:-1] for v in s.conversion("noise"))
        velocity = stage_conversions(f.path, f.prediction, s.t, (0.0,))[:, 0]  # (S, 2, B)
        sigma = s.sigma[:-1]
        g2_half = self.eta * sigma**2 * diffusion_rate(f.path, t, self.diffusion).to(t.dtype)
        # score = -N / sigma; drift = velocity + sgn(dt) g^2/2 score.
        pull = dt.abs() * g2_half / sigma
        a = 1 + dt * velocity[:, 0] - pull * p_noise
        b = dt * velocity[:, 1] - pull * q_noise
        c = (2.0 * g2_half * dt.abs()).sqrt()
        return a, b, c

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: SDEState, info: StepInfo
    ) -> tuple[Tensor, SDEState]:
        if self.eta == 0:
            return Euler().step(f, x, t0, t1, state.engine, info)[0], state
        index, scale = info.index, state.scale
        pred = f(x, t0)
        noise, state_noise = state.noise.draw(index, t1)  # g dW: scaled by c
        if pred.kind == f.prediction:
            a, b = scale[0][index], scale[1][index]
            if isinstance(a, float):
                x_next = torch.add(noise, x, alpha=a).add_(pred.value, alpha=b)
            else:
                x_next = torch.addcmul(noise, a, x).addcmul_(b, pred.value)
            return x_next, SDEState(None, scale, state_noise)
        # A guidance hook changed the prediction's kind: convert it as it is.
        dt = expand_like(t1 - t0, x)
        g2_half = self.eta * f.path.sigma(t0) ** 2 * diffusion_rate(f.path, t0, self.diffusion)
        drift = pred.velocity + dt.sign() * expand_like(g2_half, x) * pred.score
        return x + dt * drift + noise, SDEState(None, scale, state_noise)
