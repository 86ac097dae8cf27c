"""Observed convergence orders of every registered fixed-step ODE solver against a reference.

The exact velocity of a Gaussian mixture under a path is a smooth, non-linear ODE; the reference
comes from scipy's DOP853 at rtol=1e-13, independent of flowforge's own solvers. A solver is
tested here just by being registered: its `order` is the claim, checked within 0.3.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import flowforge
from flowforge import registry
from flowforge.solvers import ODE, Adaptive
from flowforge.targets import GaussianMixture

PATHS = ["cond_ot", "vp_cosine", "vp_linear", "edm"]
STEPS = {1: [32, 64, 128, 256], 2: [16, 32, 64, 128], 3: [12, 24, 48, 96], 4: [8, 16, 32, 64]}
GM = GaussianMixture(
    means=[[-1.5, 0.5], [1.0, 1.0], [0.5, -1.2]], stds=[0.6, 0.45, 0.7], weights=[0.3, 0.3, 0.4]
)


def fixed_step_ode_solvers() -> list[str]:
    return [
        name
        for name in registry.names("solver")
        if isinstance(s := registry.create("solver", name), ODE) and not isinstance(s, Adaptive)
    ]


def nfe_for_steps(solver, steps: int) -> int:
    """The smallest nfe that the solver turns into exactly `steps` steps."""
    for nfe in range(1, 8 * steps + 8):
        try:
            if solver.steps_for_nfe(nfe) == steps:
                return nfe
        except flowforge.InvalidArgumentError:
            continue
    raise AssertionError(f"{solver.name} has no nfe giving {steps} steps")


@cache
def start_and_reference(path_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    path = registry.create("path", path_name)
    t0, t1 = path.t_span
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x0 = x0 * path.sigma(torch.tensor(t0, dtype=torch.float64))

    def rhs(t, y):
        x = torch.from_numpy(y).reshape(x0.shape)
        tt = torch.full((x0.shape[0],), t, dtype=torch.float64)
        return GM.predict(x, tt, path, "velocity").reshape(-1).numpy()

    sol = solve_ivp(rhs, (t0, t1), x0.reshape(-1).numpy(), method="DOP853", rtol=1e-13, atol=1e-13)
    return x0, torch.from_numpy(sol.y[:, -1]).reshape(x0.shape)


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("solver_name", fixed_step_ode_solvers())
def test_observed_order(path_name, solver_name):
    path = registry.create("path", path_name)
    solver = registry.create("solver", solver_name)
    x0, ref = start_and_reference(path_name)
    steps = STEPS[min(solver.order, 4)]
    errors = []
    for n in steps:
        x = flowforge.sample(
            GM.field(path, "velocity"), x0, path=path, prediction="velocity",
            solver=solver, nfe=nfe_for_steps(solver, n), time_grid="uniform",
        )  # fmt: skip
        errors.append(float((x - ref).abs().max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - solver.order) < 0.3, (
        f"{solver_name} on {path_name}: observed order {slope:.2f}, claimed {solver.order}; "
        f"max errors {errors} at steps {steps}"
    )


@pytest.mark.parametrize("prediction", ["data", "noise", "score"])
def test_solution_independent_of_prediction_kind(prediction):
    """A solver sees the same velocity whatever the model predicts, so the result is identical."""
    path = registry.create("path", "vp_linear")
    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    kw = dict(path=path, solver="rk4", nfe=64, time_grid="uniform")
    ref = flowforge.sample(GM.field(path, "velocity"), x0, prediction="velocity", **kw)
    out = flowforge.sample(GM.field(path, prediction), x0, prediction=prediction, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
