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
    ExponentialSolver,
    Schedule,
    Weights,
    cached_host,
    cached_weights,
    combine,
    empty_window,
    on_device,
)
from flowforge.solvers.host_program import host_table

Beta = Annotated[float, Field(gt=0, le=1, description="damping beta in (0, 1]; 1: no momentum")]


class Momentum(Solver, ODE, Multistep):
    """Abstract: DPM-Solver++(2M) (module `dpm_solver_pp`) with a momentum average `v`.

    Per step n: `v <- v + rate_n (target_n - v)` (target: a combination of the window), then
    `x <- a_n x + new_n v_{n+1} + old_n v_n`. Wizadwongsa, Chinchuthakun, Khungurn, Raj &
    Suwajanakorn 2023, "Diffusion Sampling with Momentum for Mitigating Divergence Artifacts".
    One evaluation per step (nfe = steps).

    The average is not carried: what the last step added through it, `new_{n-1} v_n`, is
    `x_n - y_n` with `y_{n+1} = a_n x_n + old_n v_n`, so a step is one weighted sum of the window
    and `y` (`recurrence`), every coefficient precomputed for the grid; where `old` is 0 (HB),
    `y_n = a_{n-1} x_{n-1}` and the method is a plain two-step one. `new` is nonzero on any grid
    without zero-length steps (c0 = alpha_t (1 - e^{-h}) with alpha_t > 0).
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

    def recurrence(self, s: Schedule) -> tuple[Weights, dict[str, Tensor]]:
        """`x_{n+1} = w . window_n + y_n * y`, `y_{n+1} = yx x_n + yy y_n` (`(S, B)` each; `a`
        too). With `B = new (1 - rate) + old` and `k_n = 1 / new_{n-1}` (0 at n = 0: v_0 = 0),
        `v_n = k_n (x_n - y_n)` turns `x_{n+1} = a x_n + new rate target + B v_n` into this."""
        plain = DPMSolverPP(order=2).weights(s)
        a = s.sigma[1:] / s.sigma[:-1]
        a[-1] = torch.where(s.data_end, 0.0, a[-1])
        plain.add("x", 0, -a)
        c0 = s.alpha[1:] * (1 - s.decay)
        p = self.coefficients(s, plain, a, c0)
        new, rate, old = p["new"], p["rate"], p["old"]
        k = torch.cat((torch.zeros_like(new[:1]), 1 / new[:-1]))
        carried = (new * (1 - rate) + old) * k
        w = Weights(s, self.width)
        w.w = (new * rate)[:, None] * p["target"]
        w.w[:, 0] += a + carried
        return w, {"y": -carried, "yx": a + old * k, "yy": -old * k, "a": a}


def _host_rows(tables: Tensor, x: Tensor) -> list | None:
    """`host_table` of both rows of every step of `tables (S, 2, 5, 1)`, or None."""
    rows = host_table(tables.flatten(0, 1), x)
    return None if rows is None else list(zip(rows[0::2], rows[1::2], strict=True))


def _first_full(rate: Tensor, s: Schedule) -> Tensor:
    """`rate` with 1 in the first step (the average starts at its first target) and in a last
    step into sigma = 0 (which takes the extrapolated data prediction as it is)."""
    rate = rate.clone()
    rate[0] = 1
    rate[-1] = torch.where(s.data_end, 1.0, rate[-1])
    return rate


@dataclass(frozen=True)
class HeavyBall(ExponentialSolver, Momentum):
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
    width = 2

    @property
    def order(self) -> int:  # type: ignore[override]
        return 2 if self.beta == 1 else 1

    def coefficients(self, s: Schedule, plain: Weights, a: Tensor, c0: Tensor) -> dict:
        rate = _first_full(torch.full_like(c0, self.beta), s)
        return {"target": plain.w / c0[:, None], "rate": rate, "new": c0, "old": 0 * c0}

    def weights(self, schedule: Schedule) -> Weights:
        """`recurrence` with `y_n = a_{n-1} x_{n-1}` (old = 0): weights on two nodes."""
        w, parts = self.recurrence(schedule)
        a = parts["a"]
        w.w[1:, 2] += parts["y"][1:] * a[:-1]
        return w


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

    def tables(self, s: Schedule) -> Tensor:
        """`(S, 2, 5, B)`: the weights of `x_{n+1}` and of `y_{n+1}` on the window
        `(x_n, out_n, x_{n-1}, out_{n-1}, y_n)` (`recurrence`)."""
        w, parts = self.recurrence(s)
        to_x = torch.cat((w.w, parts["y"][:, None]), dim=1)
        to_y = torch.zeros_like(to_x)
        to_y[:, 0], to_y[:, 4] = parts["yx"], parts["yy"]
        return torch.stack((to_x, to_y), dim=1)

    def init(
        self, f: Dynamics, x: Tensor, grid: Tensor, generator: torch.Generator | None = None
    ) -> Any:
        tables = cached_weights(self, f, grid, self.tables)
        rows = cached_host(tables, x, _host_rows) or on_device(tables, x)
        return rows, empty_window(self.width, x), torch.zeros_like(x), f.prediction

    def step(
        self, f: Dynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        rows, window, y, kind = state
        pred = f(x, t0)
        out = pred.value if pred.kind == kind else pred.as_(kind)
        window = (x, out, *window[:2], y)
        to_x, to_y = rows[info.index]
        return combine(to_x, window), (rows, window[:2], combine(to_y, window), kind)
