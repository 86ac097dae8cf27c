"""Observed order of convergence of a fixed-step solver on an affine path.

The exact velocity of a Gaussian mixture under an affine path is a smooth non-linear ODE; the
reference solution comes from scipy's DOP853 at rtol = atol = 1e-13, independent of flowforge's
own solvers. The observed order is the slope of log(max error) against log(steps) over a range
of step counts chosen by the claimed order (so the errors stay well above the reference's).

    slope, errors = observed_order(registry.create("solver", "rk4"), "cond_ot")
    abs(slope - 4) < 0.3  # True: rk4 is fourth order
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import Tensor

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Solver
from flowforge.targets import GaussianMixture

# Step counts per claimed order: errors from about 1e-2 down to well above 1e-12.
STEPS = {1: [32, 64, 128, 256], 2: [16, 32, 64, 128], 3: [12, 24, 48, 96], 4: [8, 16, 32, 64]}
MIXTURE = GaussianMixture(
    means=[[-1.5, 0.5], [1.0, 1.0], [0.5, -1.2]], stds=[0.6, 0.45, 0.7], weights=[0.3, 0.3, 0.4]
)


def nfe_for_steps(solver: Solver, steps: int) -> int:
    """The smallest nfe that the solver turns into exactly `steps` steps."""
    for nfe in range(1, 8 * steps + 8):
        try:
            if solver.steps_for_nfe(nfe) == steps:
                return nfe
        except InvalidArgumentError:
            continue
    raise LookupError(f"{solver.name} has no nfe giving {steps} steps")


@cache
def start_and_reference(path_name: str) -> tuple[Tensor, Tensor]:
    """16 float64 starts `(16, 2)` at the path's t0 (scaled by sigma(t0)) and their exact ends."""
    from scipy.integrate import solve_ivp

    path = registry.create("path", path_name)
    t0, t1 = path.t_span
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x0 = x0 * path.sigma(torch.tensor(t0, dtype=torch.float64))

    def rhs(t, y):
        x = torch.from_numpy(y).reshape(x0.shape)
        tt = torch.full((x0.shape[0],), t, dtype=torch.float64)
        return MIXTURE.predict(x, tt, path, "velocity").reshape(-1).numpy()

    sol = solve_ivp(rhs, (t0, t1), x0.reshape(-1).numpy(), method="DOP853", rtol=1e-13, atol=1e-13)
    return x0, torch.from_numpy(sol.y[:, -1]).reshape(x0.shape)


def observed_order(
    solver: Solver,
    path_name: str,
    steps: list[int] | None = None,
    prediction: str = "velocity",
    time_grid: str = "uniform",
) -> tuple[float, list[float]]:
    """`(slope, max errors)` of `solver` on `path_name` over its default t_span.

    `steps` defaults to `STEPS[order]`; the model is `MIXTURE`'s exact `prediction`.
    """
    path: AffinePath = registry.create("path", path_name)
    x0, ref = start_and_reference(path_name)
    steps = steps or STEPS[min(max(solver.order, 1), 4)]
    errors = []
    for n in steps:
        x = flowforge.sample(
            MIXTURE.field(path, prediction), x0, path=path, prediction=prediction,
            solver=solver, nfe=nfe_for_steps(solver, n), time_grid=time_grid,
        )  # fmt: skip
        errors.append(float((x - ref).abs().max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    return float(slope), errors
