"""SDE-DPM-Solver++(2M): the second-order multistep exponential integrator of the reverse SDE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.solvers.base import Multistep
from flowforge.solvers.dpm_solver_pp import DPMSolverPP, data_weights
from flowforge.solvers.exponential import ExponentialSolver, Schedule
from flowforge.solvers.reverse_sde import ExponentialSDE


@dataclass(frozen=True)
class DPMSolverPPSDE(ExponentialSDE, Multistep):
    """SDE-DPM-Solver++(2M) (Lu et al. 2022b, "DPM-Solver++", sec. 5; k-diffusion's
    `sample_dpmpp_2m_sde`, solver_type "midpoint"), on every affine path and prediction kind.

    `reverse_sde`'s step with the data prediction extrapolated from the previous node, as in
    DPM-Solver++(2M) but with the SDE's `e^{-h - kappa}` (see `flowforge.solvers.reverse_sde`):

        x_b = (sigma_b / sigma_a) e^{-kappa} x_a + c0 (D_n + (D_n - D_{n-1}) / (2 r)) + noise,
        c0 = alpha_b (1 - e^{-h - kappa}),   r = h_{n-1} / h.

    eta = 0 is `dpm_solver_pp` (2M) exactly (same numbers, order 2). eta = 1 with
    diffusion="ddpm" is k-diffusion's default. One evaluation per step (nfe = steps) at the
    step's start. Steps without a finite history are first order: the first step, and the step
    after a pure-noise start (h_{n-1} infinite, as in k-diffusion); a last step into sigma = 0
    returns alpha_1 times D extrapolated to sigma / alpha = 0 through the last two predictions.

    >>> flowforge.sample(model, noise, path="vp_cosine", prediction="noise",
    ...                  solver="dpm_solver_pp_sde", nfe=20, generator=g)
    """

    order = 2
    name = "dpm_solver_pp_sde"
    width = 2

    def counterpart(self) -> ExponentialSolver:
        return DPMSolverPP(order=2)

    def data_weights(self, schedule: Schedule, c0: Tensor, decay: Tensor) -> list[Tensor]:
        current, previous = data_weights(2, schedule.h, c0, decay)
        # No finite history (first step, after alpha = 0, into sigma = 0): first order.
        finite = torch.isfinite(previous)
        return [torch.where(finite, current, c0), torch.where(finite, previous, 0.0)]
