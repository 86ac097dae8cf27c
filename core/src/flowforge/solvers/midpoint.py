"""The explicit midpoint method: second order, two evaluations per step."""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.solvers.explicit_rk import ExplicitRK


@dataclass(frozen=True)
class Midpoint(ExplicitRK):
    """`x_{n+1} = x_n + h v(x_n + h/2 v(x_n, t_n), t_n + h/2)`. Order 2, nfe = 2 * steps.

    Never evaluates at the end point, so it is safe where sigma(t1) = 0.
    """

    order = 2
    a = ((), (0.5,))
    b = (0.0, 1.0)
    c = (0.0, 0.5)
