"""DPM-Solver (Lu et al. 2022): the singlestep exponential integrator of orders 1-3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field

from flowforge.solvers.exponential import (
    ExponentialSolver,
    Schedule,
    Weights,
    extrapolate_to_data,
    halves,
    noisy,
)


def order_schedule(evaluations: int, order: int) -> list[int]:
    """The paper's orders of the singlestep steps for `evaluations` model calls (sec. 3.4).

    order 3: [3, ..., 3, 2, 1] if evaluations % 3 == 0, [3, ..., 3, 1] if 1, [3, ..., 3, 2]
    if 2; order 2: [2, ..., 2] plus a final 1 when odd; order 1: [1, ..., 1].
    """
    if order == 1 or evaluations < 2:
        return [1] * evaluations
    if order == 2:
        return [2] * (evaluations // 2) + [1] * (evaluations % 2)
    threes, rest = divmod(evaluations, 3)
    tail = {0: [2, 1], 1: [1], 2: [2]}[rest]
    return [3] * (threes - (rest == 0)) + tail


@dataclass(frozen=True)
class DPMSolver(ExponentialSolver):
    """DPM-Solver-1/2/3 (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion
    Probabilistic Model Sampling in Around 10 Steps"), on any affine path and prediction kind.

    Singlestep (Runge-Kutta-like): a step of order k makes k evaluations, at its start and at
    k - 1 intermediate times, and forgets them afterwards. Any nfe works: the steps follow the
    paper's order schedule (`order_schedule`; e.g. nfe = 10 at order 3 is 3 + 3 + 3 + 1), and
    the time grid holds *every* evaluation time, so a grid of nfe + 1 times (nfe = steps in the
    driver's sense) is cut into singlestep steps of 3, 2 or 1 intervals; on a logsnr grid the
    intermediate times are the paper's r1 = 1/3, r2 = 2/3 (order 3) and r1 = 1/2 (order 2).

    Each stage integrates from the step's start through the predictions of the step so far
    (module `exponential`: polynomials in nu = alpha/(alpha+sigma), exact integrals), which is
    the paper's DPM-Solver-2/3 for small steps and keeps its order for any placement of the
    intermediate times. Noise form (the paper's) in the clean half of the path, data form in
    the noisy half (the noise form divides by alpha = 0 at pure noise). A trailing order-1 step
    of an order-3 schedule would be first order; it also uses the previous step's last
    intermediate prediction (a two-node multistep step), so the order holds. A step into
    sigma = 0 needs no special rule (noise form).

    >>> flowforge.sample(model, noise, path="vp_cosine", prediction="noise",
    ...                  solver=DPMSolver(order=3), nfe=10)
    """

    order: Annotated[int, Field(ge=1, le=3, description="singlestep order (1-3)")] = 3
    name = "dpm_solver"

    @property
    def width(self) -> int:
        return self.order

    def weights(self, schedule: Schedule) -> Weights:
        orders = order_schedule(schedule.steps, self.order)
        starts = [sum(orders[:i]) for i in range(len(orders))]
        # A whole step takes the form of its start.
        first = torch.tensor([g for g, m in zip(starts, orders, strict=True) for _ in range(m)])
        data = noisy(schedule)[first]
        build = lambda w, form: self._stages(w, form, orders, starts)
        w = halves(schedule, self.width, build, data=data)
        extrapolate_to_data(w, orders[-1], where=data[-1])
        return w

    def _stages(self, w: Weights, form: str, orders: list[int], starts: list[int]) -> None:
        for size in (1, 2, 3):
            first = [g for g, m in zip(starts, orders, strict=True) if m == size]
            if not first:
                continue
            for q in range(size):
                rows = torch.tensor([g + q for g in first])
                w.integrate(form, list(range(q + 1)), rows=rows, start=q)
        if self.order == 3 and orders[-1] == 1 and len(orders) > 1:
            # The previous step's last evaluation is as accurate as needed (order 3: its last
            # intermediate state is second-order; order 2: its start node).
            previous = 1 if orders[-2] == 3 else 2
            fresh = w.blank()
            row = starts[-1]
            fresh.integrate(form, [0, previous], rows=[row])
            w.replace(row, fresh)
