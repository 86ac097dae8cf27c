"""The classical fourth-order Runge-Kutta method."""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.solvers.explicit_rk import ExplicitRK


@dataclass(frozen=True)
class RK4(ExplicitRK):
    """Classical RK4: order 4, nfe = 4 * steps. Its last stage evaluates the model at t1.

    At an end point where sigma = 0 a data/noise prediction has no finite velocity: stop at
    `t_span=(0, 1 - eps)` or use `heun`/`midpoint` there.
    """

    order = 4
    a = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    c = (0.0, 0.5, 0.5, 1.0)
