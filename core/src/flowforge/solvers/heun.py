"""Heun's method as in EDM (Karras et al. 2022): second order, with an Euler last step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import StepInfo, steps_from_nfe
from flowforge.solvers.euler import Euler
from flowforge.solvers.explicit_rk import ExplicitRK


@dataclass(frozen=True)
class Heun(ExplicitRK):
    """Trapezoidal predictor-corrector (order 2); the final step is a plain Euler step.

    The last step skips the corrector, as EDM does, so the model is never evaluated at the end
    point (sigma = 0 there for most paths). nfe = 2 * steps - 1. The Euler step has local error
    O(h^2), so the global order stays 2 (checked in the convergence tests).
    """

    order = 2
    a = ((), (1.0,))
    b = (0.5, 0.5)
    c = (0.0, 1.0)

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, 2, extra=-1)

    def tableau(self, last: bool) -> tuple[Any, Any, Any]:
        return (Euler.a, Euler.b, Euler.c) if last else (self.a, self.b, self.c)

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        coefficients = None if state is None else state[info.index]
        if info.last:  # Euler's one stage is this tableau's first (c = 0)
            return Euler().rk_step(f, x, t0, t1, coefficients), state
        return self.rk_step(f, x, t0, t1, coefficients), state
