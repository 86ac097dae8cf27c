"""Dormand-Prince 5(4): the adaptive Runge-Kutta method, with per-sample step-size control.

Each sample has its own step size and its own accept/reject decision, so a sample's result does
not depend on the rest of the batch; every stage is one batched model call over the samples that
are still running (one NFE). Step-size control reads the error on the host, so an adaptive solve
is not graph-capturable; use a fixed-step solver for CUDA graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.field import Dynamics
from flowforge.solvers.base import ODE, Adaptive, AdaptiveOutcome, Solver, StepInfo
from flowforge.tensors import expand_like

# Dormand & Prince (1980): stage nodes, the 7 stages (the 7th is the 5th-order solution, FSAL),
# and the error weights b5 - b4 of the embedded 4th-order solution.
C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
E = (
    71 / 57600,
    0.0,
    -71 / 16695,
    71 / 1920,
    -17253 / 339200,
    22 / 525,
    -1 / 40,
)
FAC_MIN, FAC_MAX = 0.2, 10.0  # bounds of the step-size change per step (Hairer's DOPRI5)
PI_BETA = 0.04  # Hairer & Wanner's stabilising PI coefficient; 0 gives the standard controller


def _rms(z: Tensor) -> Tensor:
    """Per-sample root-mean-square over all but the batch dimension: `(B, ...)` -> `(B,)`."""
    return z.reshape(z.shape[0], -1).square().mean(1).sqrt()


def _combine(x: Tensor, h: Tensor, weights: tuple[float, ...], ks: list[Tensor]) -> Tensor:
    """`x + h * sum_j weights[j] ks[j]` with `h` broadcast per sample."""
    out = x
    for w, k in zip(weights, ks, strict=False):
        if w:
            out = out + (h * w) * k
    return out


@dataclass(frozen=True)
class Dopri5(Solver, ODE, Adaptive):
    """Dormand-Prince 5(4) with FSAL and per-sample PI step-size control (order 5).

    A step is accepted when the RMS over a sample's entries of `err / (atol + rtol * |x|)` is at
    most 1 (Hairer, Norsett & Wanner, Solving ODEs I, II.4). The first step size follows Hairer's
    starting-step algorithm (one extra evaluation) unless `first_step` is given. Both end points
    are evaluated, so a data/noise/score prediction needs a `t_span` off the end where it has no
    finite velocity (see docs/concepts.md). `nfe` given to `flowforge.sample` is a budget (None:
    `max_nfe`); running out raises `NumericalError`; `SampleResult.nfe` reports what was used.

    >>> out = flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                        solver=Dopri5(rtol=1e-6, atol=1e-6), nfe=None,
    ...                        return_trajectory=True)
    >>> out.nfe  # evaluations used
    """

    rtol: Annotated[float, Field(gt=0, lt=1, description="relative tolerance per step")] = 1e-5
    atol: Annotated[float, Field(gt=0, description="absolute tolerance per step")] = 1e-5
    controller: Annotated[
        Literal["pi", "standard"],
        Field(description="pi: Hairer's PI control (smoother); standard: h *= (1/err)^(1/5)"),
    ] = "pi"
    safety: Annotated[float, Field(gt=0, lt=1, description="step-size safety factor")] = 0.9
    first_step: Annotated[
        float | None, Field(gt=0, description="initial |step| in t; None: Hairer's estimate")
    ] = None
    max_nfe: Annotated[
        int, Field(ge=8, description="evaluation cap when sample(..., nfe=None)")
    ] = 10_000

    order: ClassVar[int] = 5

    def steps_for_nfe(self, nfe: int) -> int:
        raise InvalidArgumentError(
            f"{self.name} is adaptive: it chooses its own steps, and nfe is a budget for "
            "flowforge.sample (None: its max_nfe cap); it has no fixed number of steps"
        )

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        raise InvalidArgumentError(
            f"{self.name} is adaptive: run it with flowforge.sample, which calls solve(); "
            "for step-by-step use on a grid pick a fixed-step solver such as rk4"
        )

    def solve(
        self,
        f: Dynamics,
        x: Tensor,
        t0: Tensor,
        t1: Tensor,
        max_nfe: int | None,
        generator: torch.Generator | None,
    ) -> AdaptiveOutcome:
        """Integrate `x (B, ...)` from `t0 (B,)` to `t1 (B,)` (either direction) within budget."""
        budget = _Budget(self, self._budget(max_nfe), f, t1)
        t, y = t0.clone(), x.clone()
        direction = torch.sign(t1 - t0)
        running = t1 != t0
        k1 = torch.zeros_like(y)
        err_old = torch.full_like(t, 1e-4)
        rejected = torch.zeros_like(running)
        traj, times = [x], [t0]
        idx = running.nonzero()[:, 0]
        batch = t.shape[0]
        if len(idx):
            budget.check(1, t)
            with f.rows(idx, batch):
                k1[idx] = f(y[idx], t[idx]).velocity
        with f.rows(idx, batch):
            h = self._initial_step(f, y, t, t1, k1, idx, budget)
        while len(idx := running.nonzero()[:, 0]):
            budget.check(6, t)
            rest = (t1 - t)[idx].abs()
            # Land exactly on t1 rather than leave a sliver of less than 1% of a step.
            hit = 1.01 * h[idx] >= rest
            dt = torch.where(hit, rest, h[idx]) * direction[idx]
            with f.rows(idx, batch):  # per-sample conditions follow the running samples
                y_new, k7, err = self._attempt(f, y[idx], t[idx], k1[idx], dt)
            scale = self.atol + self.rtol * torch.maximum(y[idx].abs(), y_new.abs())
            norm = _rms(err / scale).nan_to_num(nan=torch.inf)
            accept = norm <= 1.0
            h[idx] = dt.abs() * self._factor(norm, err_old[idx], accept, ~rejected[idx])
            done = accept & hit
            self._check_underflow(h[idx][~done], t[idx][~done], t1[idx][~done])
            keep = idx[accept]
            y[keep], k1[keep] = y_new[accept], k7[accept]
            t[keep] = torch.where(done, t1[idx], t[idx] + dt)[accept]
            err_old[keep] = norm[accept].clamp_min(1e-4)
            rejected[idx] = ~accept
            running[idx[done]] = False
            if bool(accept.any()):
                traj.append(y.clone())
                times.append(t.clone())
        return AdaptiveOutcome(y, traj, times)

    def _attempt(
        self, f: Dynamics, y: Tensor, t: Tensor, k1: Tensor, dt: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One Dormand-Prince step of signed size `dt (n,)`: (5th-order y, FSAL stage, error)."""
        h = expand_like(dt, y)
        ks = [k1]
        for ci, ai in zip(C[1:], A[1:], strict=True):
            ks.append(f(_combine(y, h, ai, ks), t + ci * dt).velocity)
        y_new = _combine(y, h, A[-1], ks)
        return y_new, ks[-1], _combine(torch.zeros_like(y), h, E, ks)

    def _factor(self, norm: Tensor, err_old: Tensor, accept: Tensor, may_grow: Tensor) -> Tensor:
        """Step-size factor: `safety * norm^-(1/5 - 0.75 beta) * err_old^beta` (Hairer's PI).

        beta = 0.04 for `pi`, 0 for `standard`. A rejected step, or the step right after one,
        never grows; every change is bounded to [FAC_MIN, FAC_MAX].
        """
        beta = PI_BETA if self.controller == "pi" else 0.0
        base = self.safety * norm.clamp_min(1e-10) ** (0.75 * beta - 0.2)
        fac = torch.where(accept, base * err_old**beta, base).clamp(FAC_MIN, FAC_MAX)
        return torch.where(accept & may_grow, fac, fac.clamp_max(1.0))

    def _initial_step(
        self,
        f: Dynamics,
        y: Tensor,
        t: Tensor,
        t1: Tensor,
        k1: Tensor,
        idx: Tensor,
        budget: _Budget,
    ) -> Tensor:
        """Per-sample first |step| (Hairer, Norsett & Wanner, II.4): one extra evaluation."""
        h = (t1 - t).abs()
        if self.first_step is not None:
            return h.clamp_max(self.first_step)
        if not len(idx):
            return h
        ya, ka, span = y[idx], k1[idx], h[idx]
        scale = self.atol + self.rtol * ya.abs()
        d0, d1 = _rms(ya / scale), _rms(ka / scale)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1.clamp_min(1e-30))
        h0 = torch.minimum(h0, span)
        dt = h0 * torch.sign(t1 - t)[idx]
        budget.check(1, t)
        k2 = f(ya + expand_like(dt, ya) * ka, t[idx] + dt).velocity
        d2 = _rms((k2 - ka) / scale) / h0
        dmax = torch.maximum(d1, d2)
        h1 = torch.where(
            dmax <= 1e-15, (h0 * 1e-3).clamp_min(1e-6), (0.01 / dmax.clamp_min(1e-15)) ** 0.2
        )
        h[idx] = torch.minimum(torch.minimum(100 * h0, h1), span)
        return h

    def _budget(self, max_nfe: int | None) -> int:
        if max_nfe is None:
            return self.max_nfe
        if isinstance(max_nfe, bool) or not isinstance(max_nfe, int) or max_nfe < 1:
            raise InvalidArgumentError(
                f"nfe for the adaptive solver {self.name!r} is a budget: a positive integer or "
                f"None (its cap max_nfe={self.max_nfe}); got {max_nfe!r}"
            )
        return max_nfe

    def _check_underflow(self, h: Tensor, t: Tensor, t1: Tensor) -> None:
        floor = 16 * torch.finfo(t.dtype).eps * torch.maximum(t.abs(), t1.abs()).clamp_min(1.0)
        if bool((h < floor).any()):
            at = float(t[h < floor][0])
            raise NumericalError(
                f"{self.name}'s step size underflowed at t={at:.6g}: the field is non-finite or "
                "too stiff there. Check the model's output, narrow t_span away from end points "
                "where the prediction has no finite velocity, or loosen rtol/atol"
            )


class _Budget:
    """The evaluation budget of one solve: raises before a group of calls would overrun it."""

    def __init__(self, solver: Dopri5, limit: int, f: Dynamics, t1: Tensor):
        self.solver, self.limit, self.f, self.t1 = solver, limit, f, t1
        self.start = f.nfe

    def check(self, calls: int, t: Tensor) -> None:
        """Raise `NumericalError` if `calls` more evaluations would overrun; `t (B,)` now."""
        if self.f.nfe - self.start + calls <= self.limit:
            return
        s, running = self.solver, t != self.t1
        behind = float((self.t1 - t)[running].abs().max())
        raise NumericalError(
            f"{s.name} would exceed its budget of nfe={self.limit} with {int(running.sum())} "
            f"sample(s) still {behind:.3g} short of t1 (rtol={s.rtol:g}, atol={s.atol:g}). Fix: "
            f"raise nfe (or pass nfe=None for the cap max_nfe={s.max_nfe}), loosen rtol/atol, "
            "or use a fixed-step solver such as rk4 with an exact nfe"
        )
