"""DDIM: the first-order exponential integrator, exact for a constant data/noise prediction."""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.solvers.base import Multistep
from flowforge.solvers.exponential import ExponentialSolver, Schedule, Weights


@dataclass(frozen=True)
class DDIM(ExponentialSolver, Multistep):
    """DDIM (Song et al. 2021) on any affine path: `x_t = alpha_t D(x_s) + sigma_t N(x_s)`.

    The deterministic DDIM update, written for any schedule: the current data and noise
    predictions carried to the next time. Equal to DPM-Solver-1 and DPM-Solver++-1 (Lu et al.
    2022) and to UniPC-1 without corrector. Order 1, nfe = steps, one evaluation per step at the
    step's start, so the end point t1 is never evaluated; the formula is finite at both ends
    (alpha = 0 start, sigma = 0 end: the last step returns alpha_1 D), in either direction of time.

    >>> flowforge.sample(model, noise, path="vp_cosine", prediction="noise", solver="ddim", nfe=50)
    """

    order = 1
    name = "ddim"

    @property
    def width(self) -> int:
        return 1

    def weights(self, schedule: Schedule) -> Weights:
        w = Weights(schedule, self.width)
        w.add("data", 0, schedule.alpha[1:])
        w.add("noise", 0, schedule.sigma[1:])
        return w
