"""DPM-Solver++(2M) with momentum: heavy ball (HB) and generalized heavy ball (GHVB)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.solvers.base import ODE, Multistep, Solver, StepInfo, steps_from_nfe
from flowforge.solvers.dpm_solver_pp import DPMSolverPP
from flowforge.solvers.exponential import (
    Schedule,
    Weights,
    combine,
    empty_window,
    host_schedule,
    host_table,
    on_device,
)

SCALARS = ("rate", "x", "new", "old")
Beta = Annotated[float, Field(gt=0, le=1, description="damping beta in (0, 1]; 1: no momentum")]


class Momentum(Solver, ODE, Multistep):
    """Abstract: DPM-Solver++(2M) (module `dpm_solver_pp`) with a momentum average `v`.

    Per step n: `v <- v + rate_n (target_n - v)` (target: a combination of the window), then
    `x <- a_n x + new_n v_{n+1} + old_n v_n`. `init` precomputes every coefficient.
    Wizadwongsa, Chinchuthakun, Khungurn, Raj & Suwajanakorn 2023, "Diffusion Sampling with
    Momentum for Mitigating Divergence Artifacts". One evaluation per step (nfe = steps).
    """

    beta: float
    default_grid = "logsnr"
    width = 2

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, 1)

    @abc.abstractmethod
    def coefficients(self, s: Schedule, plain: Weights, a: Tensor, c0: Tensor) -> dict:
        """The per-step `target (S, 2W, B)`, `rate`, `new`, `old (S, B)` given DPM-Solver++(2M)'s
        weights `plain` without its state term, the state factor `a` and `c0 = alpha_t(1-e^-h)`.
        """

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> Any:
        s = host_schedule(f, grid)
        plain = DPMSolverPP(order=2).weights(s)
        a = s.sigma[1:] / s.sigma[:-1]
        a[-1] = torch.where(s.data_end, 0.0, a[-1])
        plain.add("x", 0, -a)
        c0 = s.alpha[1:] * (1 - s.decay)
        parts = self.coefficients(s, plain, a, c0)
        parts["x"] = a
        table = host_table(parts["target"], x)
        if table is None:
            steps = {k: on_device(v, x) for k, v in parts.items()}
        else:  # CPU, shared weights: per step (target pairs, rate, x, new, old) as numbers
            scalars = [parts[k][:, 0].tolist() for k in SCALARS]
            steps = [(row, *values) for row, *values in zip(table, *scalars, strict=True)]
        return steps, empty_window(self.width, x), torch.zeros_like(x), f.prediction

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        steps, window, v, kind = state
        n = info.index
        pred = f(x, t0)
        out = pred.value if pred.kind == kind else pred.as_(kind)
        window = (x, out, *window[:-2])
        if isinstance(steps, list):
            target, rate, a, new, old = steps[n]
            v_new = torch.lerp(v, combine(target, window), rate)
            x = (x * a).add_(v_new, alpha=new).add_(v, alpha=old)
        else:
            v_new = torch.lerp(v, combine(steps["target"][n], window), steps["rate"][n])
            x = steps["x"][n] * x + steps["new"][n] * v_new + steps["old"][n] * v
        return x, (steps, window, v_new, kind)


def _first_full(rate: Tensor, s: Schedule) -> Tensor:
    """`rate` with 1 in the first step (the average starts at its first target) and in a last
    step into sigma = 0 (which takes the extrapolated data prediction as it is)."""
    rate = rate.clone()
    rate[0] = 1
    rate[-1] = torch.where(s.data_end, 1.0, rate[-1])
    return rate


@dataclass(frozen=True)
class HeavyBall(Momentum):
    """DPM-Solver++(2M) with Polyak's heavy ball (HB, the paper's eq. 14 on DPM-Solver++):

        v_{n+1} = (1 - beta) v_n + beta D^_n,   x_{n+1} = (sigma_{n+1}/sigma_n) x_n + c0 v_{n+1}

    with D^_n the 2M data prediction (`x_{n+1}` with `v_{n+1} = D^_n` is 2M exactly) and
    `c0 = alpha_{n+1} (1 - e^{-h})`. beta = 1 is DPM-Solver++(2M); smaller beta enlarges the
    stability region (fewer divergence artifacts at low nfe, strong guidance) at the price of
    first order (the paper's Theorem 1): `order` is 1 for beta < 1, 2 for beta = 1 (the first-
    order error is proportional to 1 - beta, so for beta near 1 practical nfe see between one
    and two; the default 0.7 is first order from nfe ~ 10 on). The average
    starts at `v_1 = D^_0` (the first step is DDIM); a last step into sigma = 0 uses the data
    prediction extrapolated to the data end (module `exponential`) without averaging.

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver=HeavyBall(beta=0.7), nfe=15)
    """

    beta: Beta = 0.7
    name = "dpm_solver_pp_hb"

    @property
    def order(self) -> int:  # type: ignore[override]
        return 2 if self.beta == 1 else 1

    def coefficients(self, s: Schedule, plain: Weights, a: Tensor, c0: Tensor) -> dict:
        rate = _first_full(torch.full_like(c0, self.beta), s)
        return {"target": plain.w / c0[:, None], "rate": rate, "new": c0, "old": 0 * c0}


@dataclass(frozen=True)
class GeneralizedHeavyBall(Momentum):
    """Generalized heavy ball of second order (GHVB, the paper's eq. 19 and Alg. 2) on
    DPM-Solver++(2M): the average is taken of the raw data predictions, and the 2M
    extrapolation is applied to the averages,

        v_{n+1} = (1 - beta) v_n + beta D_n,
        x_{n+1} = (sigma_{n+1}/sigma_n) x_n + c0 (v_{n+1} + g_n (v_{n+1} - v_n)),
        g_n = gamma_n (2 - beta) / beta,

    where gamma_n is 2M's extrapolation factor (`D^_n = D_n + gamma_n (D_n - D_{n-1})`, 1/2 on
    uniform steps, which gives the paper's (2 + beta)/(2 beta), (2 - beta)/(2 beta)). beta = 1
    is DPM-Solver++(2M); smaller beta trades accuracy for stability but keeps order 2 (the
    paper's Theorem 2). The first step is DDIM (v_1 = D_0); a last step into sigma = 0 returns
    alpha_1 times the extrapolated data prediction.

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver=GeneralizedHeavyBall(beta=0.8), nfe=15)
    """

    beta: Beta = 0.8
    name = "dpm_solver_pp_ghb"
    order = 2

    def coefficients(self, s: Schedule, plain: Weights, a: Tensor, c0: Tensor) -> dict:
        raw = DPMSolverPP(order=2).weights(Schedule(s.path, "data", s.t))
        gamma = -raw.w[:, 3] / c0
        g = gamma * (2 - self.beta) / self.beta
        g[0] = 0
        target = Weights(s, self.width)
        target.add("data", 0, 1.0)
        target.replace(s.steps - 1, plain, where=s.data_end)
        target.w[-1] = torch.where(s.data_end, target.w[-1] / c0[-1], target.w[-1])
        g[-1] = torch.where(s.data_end, 0.0, g[-1])
        rate = _first_full(torch.full_like(c0, self.beta), s)
        return {"target": target.w, "rate": rate, "new": c0 * (1 + g), "old": -c0 * g}
