"""Euler-Maruyama on the marginal-preserving reverse SDE: the textbook stochastic baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import StepInfo
from flowforge.solvers.euler import Euler
from flowforge.solvers.reverse_sde import (
    Diffusion,
    NoiseState,
    SDEState,
    StochasticSolver,
    diffusion_rate,
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
        """At eta = 0, `euler`'s state (its velocity coefficients), so the numbers are euler's."""
        return SDEState(Euler().init(f, x, grid) if self.eta == 0 else None, None, noise)

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: SDEState, info: StepInfo
    ) -> tuple[Tensor, SDEState]:
        if self.eta == 0:
            return Euler().step(f, x, t0, t1, state.engine, info)[0], state
        pred = f(x, t0)
        dt = expand_like(t1 - t0, x)
        g2_half = self.eta * f.path.sigma(t0) ** 2 * diffusion_rate(f.path, t0, self.diffusion)
        xi, noise = state.noise.draw(info.index, t1)
        drift = pred.velocity + dt.sign() * expand_like(g2_half, x) * pred.score
        std = expand_like((2.0 * g2_half * (t1 - t0).abs()).sqrt(), x)  # of g dW
        x_next = x + dt * drift + std * xi
        return x_next, SDEState(None, None, noise)
