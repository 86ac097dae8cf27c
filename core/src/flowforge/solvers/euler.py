"""Euler's method: first order, one evaluation per step."""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.solvers.explicit_rk import ExplicitRK


@dataclass(frozen=True)
class Euler(ExplicitRK):
    """`x_{n+1} = x_n + h v(x_n, t_n)`. Order 1, nfe = steps. Never evaluates at the end point.

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver="euler", nfe=50)
    """

    order = 1
    a = ((),)
    b = (1.0,)
    c = (0.0,)
