"""DEIS (Zhang & Chen 2023): exponential integrator with the prediction a polynomial in time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.solvers.base import Multistep
from flowforge.solvers.exponential import ExponentialSolver, Schedule, Weights, split_multistep


@dataclass(frozen=True)
class DEIS(ExponentialSolver, Multistep):
    """tAB-DEIS of order 1-3 (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with
    Exponential Integrator"), on any affine path and prediction kind.

    The exponential integrator with the prediction approximated by the polynomial in t through
    the last `order` nodes (time-Adams-Bashforth), and its integral against the schedule's exact
    kernel: `x_b = alpha_b (x_a / alpha_a + sum_j N_j C_j)`, `C_j = int_{t_a}^{t_b} (d rho/dt)
    l_j(t) dt` in the clean half of the path (rho = sigma/alpha, the paper's noise form), and
    the data-form mirror `x_b = sigma_b (x_a / sigma_a + sum_j D_j int (d kappa/dt) l_j dt)` in
    the noisy half (kappa = alpha/sigma), where the noise form divides by alpha -> 0. The
    coefficients C_j are precomputed in `init` for the whole grid on the device, by 8-point
    Gauss-Legendre quadrature per step (the kernels are not polynomial). nfe = steps; the first
    `order - 1` steps integrate from t0 through all predictions so far (full-order warm-up); the
    last step integrates the noise form to sigma = 0 directly.

    >>> flowforge.sample(model, noise, path="vp_linear", prediction="noise", solver="deis", nfe=10)
    """

    order: Annotated[int, Field(ge=1, le=3, description="multistep order (1-3)")] = 3
    name = "deis"
    default_grid = "edm"

    @property
    def width(self) -> int:
        return self.order

    def weights(self, schedule: Schedule) -> Weights:
        return split_multistep(schedule, self.order, "integrate_in_time")
