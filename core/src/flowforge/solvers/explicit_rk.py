"""Explicit Runge-Kutta methods from a Butcher tableau, on the velocity of any prediction kind."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import ODE, Solver, StepInfo, steps_from_nfe
from flowforge.solvers.exponential import Schedule, on_device, shared_columns
from flowforge.solvers.host_program import on_host
from flowforge.tensors import expand_like


class ExplicitRK(Solver, ODE):
    """Abstract: a fixed-step explicit RK method; subclasses give the tableau `(a, b, c)`."""

    a: ClassVar[tuple[tuple[float, ...], ...]]
    b: ClassVar[tuple[float, ...]]
    c: ClassVar[tuple[float, ...]]

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, len(self.b))

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> Any:
        """For a model that does not predict velocity, `velocity_coefficients` of every stage."""
        if f.prediction == "velocity":
            return None
        return velocity_coefficients(f, x, grid, self.c)

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        if state is None:  # a velocity model
            return self.rk_step(f, x, t0, t1), state
        return self.rk_step(f, x, t0, t1, state[info.index]), state

    def rk_step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, coefficients: Any = None
    ) -> Tensor:
        """One step of the tableau from `t0` to `t1` (per-sample step sizes).

        Each stage sum term is one fused `addcmul`, and a stage at c = 0 or 1 reuses `t0`/`t1`:
        the step's own arithmetic is a few tensor ops (benchmarks/overhead.py). `coefficients`:
        this step's `(p, q)` per stage (`velocity_coefficients`), or None to convert as the
        prediction does.
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
            pred = f(xi, ti)
            if coefficients is None or pred.kind != f.prediction:
                ks.append(pred.velocity)
            elif isinstance(coefficients[i][0], float):
                p, q = coefficients[i]
                ks.append((pred.value * q).add_(xi, alpha=p))
            else:
                p, q = coefficients[i]
                ks.append(torch.addcmul(pred.value * q, xi, p))
        out = x
        for bi, ki in zip(self.b, ks, strict=True):
            if bi:
                out = torch.addcmul(out, h, ki, value=bi)
        return out


def velocity_coefficients(f: Dynamics, x: Tensor, grid: Tensor, c: tuple[float, ...]) -> Any:
    """Per step and stage, `(p, q)` with `velocity = p x + q output` for `f`'s prediction kind
    at the stage time `t_n + c_i h_n` (the data and noise forms of `exponential.Schedule`
    through `v = alpha' D + sigma' N`).

    Computed for the whole grid at once, so a step converts with two tensor ops instead of
    evaluating alpha, sigma and their derivatives at every evaluation. Python numbers on the
    CPU when every sample shares the grid and no gradient flows into it, else tensors
    `(B, 1, ...)`.
    """
    g = shared_columns(grid)
    t0, dt = g[:-1], g[1:] - g[:-1]
    times = torch.stack([t0 if ci == 0 else g[1:] if ci == 1 else t0 + ci * dt for ci in c], 1)
    s = Schedule(f.path, f.prediction, times)
    (p_data, q_data), (p_noise, q_noise) = s.conversion("data"), s.conversion("noise")
    da, ds = f.path.d_alpha(s.t).to(s.t.dtype), f.path.d_sigma(s.t).to(s.t.dtype)
    table = torch.stack((da * p_data + ds * p_noise, da * q_data + ds * q_noise), 2)
    if on_host(table, x):
        return [[tuple(stage) for stage in row] for row in table[..., 0].tolist()]
    return on_device(table, x)
