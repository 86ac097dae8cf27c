"""Explicit Runge-Kutta methods from a Butcher tableau, on the velocity of any prediction kind."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import ODE, Solver, StepInfo, steps_from_nfe
from flowforge.tensors import expand_like


class ExplicitRK(Solver, ODE):
    """Abstract: a fixed-step explicit RK method; subclasses give the tableau `(a, b, c)`."""

    a: ClassVar[tuple[tuple[float, ...], ...]]
    b: ClassVar[tuple[float, ...]]
    c: ClassVar[tuple[float, ...]]

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, len(self.b))

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        return self.rk_step(f, x, t0, t1), state

    def rk_step(self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor) -> Tensor:
        """One step of the tableau from `t0` to `t1` (per-sample step sizes).

        Each stage sum term is one fused `addcmul`, and a stage at c = 0 or 1 reuses `t0`/`t1`:
        the step's own arithmetic is a few tensor ops (benchmarks/overhead.py).
        """
        dt = t1 - t0
        h = expand_like(dt, x)
        ks: list[Tensor] = []
        for i, ci in enumerate(self.c):
            xi = x
            for aij, kj in zip(self.a[i], ks, strict=False):
                if aij:
                    xi = torch.addcmul(xi, h, kj, value=aij)
            ti = t0 if ci == 0 else t1 if ci == 1 else t0 + ci * dt
            ks.append(f(xi, ti).velocity)
        out = x
        for bi, ki in zip(self.b, ks, strict=True):
            if bi:
                out = torch.addcmul(out, h, ki, value=bi)
        return out
