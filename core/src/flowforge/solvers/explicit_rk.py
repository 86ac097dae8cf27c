"""Explicit Runge-Kutta methods from a Butcher tableau, on the velocity of any prediction kind."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.graph.host_sync import cpu_only
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import ODE, Solver, StepInfo, steps_from_nfe
from flowforge.solvers.exponential import Schedule, cached_weights, on_device, shared_columns
from flowforge.solvers.rk_program import HostRKStep, RKProgram, host_steps, rk_program
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
        """On the CPU with a grid every sample shares, each step's `HostRKStep` (module
        `rk_program`); else, for a model that does not predict velocity,
        `velocity_coefficients` of every stage."""
        if x.device.type == "cpu" and not grid.requires_grad:
            with cpu_only():  # reads the grid on the host: no sync on the CPU
                programs = cached_weights(self, f, grid, self.host_programs)
            if programs is not None:
                return host_steps(programs, grid)
        if f.prediction == "velocity":
            return None
        return velocity_coefficients(f, x, grid, self.c)

    def tableau(self, last: bool) -> tuple[Any, Any, Any]:
        """`(a, b, c)` of a step (`last`: the solve's last step); its stages are the first
        stages of the method's `c`."""
        return self.a, self.b, self.c

    def host_programs(self, s: Schedule) -> list[RKProgram] | None:
        """Every step's `RKProgram` on the shared grid column of `s`, or None where the
        samples' grids differ."""
        if s.t.shape[1] != 1:
            return None
        g = s.t[:, 0].tolist()
        steps = len(g) - 1
        table = None
        if s.kind != "velocity":
            table = stage_conversions(s.path, s.kind, s.t, self.c)[..., 0].tolist()
        programs = []
        for n in range(steps):
            tableau = self.tableau(n == steps - 1)
            stages = len(tableau[2])
            p, q = (
                zip(*table[n][:stages], strict=True)
                if table
                else ((0.0,) * stages, (1.0,) * stages)
            )
            programs.append(rk_program(tableau, g[n + 1] - g[n], p, q))
        return programs

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

        `coefficients`: this step's `HostRKStep` (its CPU program), or its `(p, q)` per stage
        (`velocity_coefficients`), or None to convert as the prediction does. Each stage sum
        term is one fused `addcmul`, and a stage at c = 0 or 1 reuses `t0`/`t1`.
        """
        if isinstance(coefficients, HostRKStep):
            return coefficients.run(f, x, t0, t1)
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
            else:
                p, q = coefficients[i]
                ks.append(torch.addcmul(pred.value * q, xi, p))
        out = x
        for bi, ki in zip(self.b, ks, strict=True):
            if bi:
                out = torch.addcmul(out, h, ki, value=bi)
        return out


def stage_conversions(path: AffinePath, kind: str, grid: Tensor, c: tuple[float, ...]) -> Tensor:
    """`(S, stages, 2, B)`: per step and stage, `(p, q)` with `velocity = p x + q output` for
    prediction `kind` at the stage time `t_n + c_i h_n` of `grid (S+1, B)` (the data and noise
    forms of `exponential.Schedule` through `v = alpha' D + sigma' N`), in float64."""
    t0, dt = grid[:-1], grid[1:] - grid[:-1]
    times = torch.stack([t0 if ci == 0 else grid[1:] if ci == 1 else t0 + ci * dt for ci in c], 1)
    s = Schedule(path, kind, times)
    (p_data, q_data), (p_noise, q_noise) = s.conversion("data"), s.conversion("noise")
    da, ds = path.d_alpha(s.t).to(s.t.dtype), path.d_sigma(s.t).to(s.t.dtype)
    return torch.stack((da * p_data + ds * p_noise, da * q_data + ds * q_noise), 2)


def velocity_coefficients(f: Dynamics, x: Tensor, grid: Tensor, c: tuple[float, ...]) -> Tensor:
    """`stage_conversions` of the solve as tensors `(S, stages, 2, B or 1, 1, ...)` on x's
    device: computed for the whole grid at once, so a step converts with two tensor ops
    instead of evaluating alpha, sigma and their derivatives at every evaluation (per-sample
    grids, the GPU, a grid that carries a gradient; the CPU with a shared grid runs
    `rk_program` instead)."""
    return on_device(stage_conversions(f.path, f.prediction, shared_columns(grid), c), x)
