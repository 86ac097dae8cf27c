"""Observed convergence orders of the fixed-step solvers against a high-precision reference.

The exact velocity of a Gaussian mixture under a path is a smooth, non-linear ODE; the reference
solution comes from scipy's DOP853 at rtol=1e-13, independent of flowforge's own solvers.
"""

from __future__ import annotations

import flowforge
import numpy as np
import pytest
import torch
from flowforge import registry
from flowforge.targets import GaussianMixture
from scipy.integrate import solve_ivp

EXPECTED = {"euler": 1, "heun": 2, "midpoint": 2, "rk4": 4}
STEPS = {
    "euler": [32, 64, 128, 256],
    "heun": [16, 32, 64, 128],
    "midpoint": [16, 32, 64, 128],
    "rk4": [8, 16, 32, 64],
}
PER_STEP = {"euler": (1, 0), "heun": (2, -1), "midpoint": (2, 0), "rk4": (4, 0)}


@pytest.fixture(scope="module")
def mixture() -> GaussianMixture:
    return GaussianMixture(
        means=[[-1.5, 0.5], [1.0, 1.0], [0.5, -1.2]], stds=[0.6, 0.45, 0.7], weights=[0.3, 0.3, 0.4]
    )


def _reference(gm: GaussianMixture, path, x0: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
    shape = x0.shape

    def rhs(t, y):
        x = torch.from_numpy(y).reshape(shape)
        tt = torch.full((shape[0],), t, dtype=torch.float64)
        return gm.predict(x, tt, path, "velocity").reshape(-1).numpy()

    sol = solve_ivp(rhs, (t0, t1), x0.reshape(-1).numpy(), method="DOP853", rtol=1e-13, atol=1e-13)
    return torch.from_numpy(sol.y[:, -1]).reshape(shape)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "vp_linear"])
@pytest.mark.parametrize("solver", sorted(EXPECTED))
def test_observed_order(mixture, path_name, solver):
    path = registry.create("path", path_name)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=gen)
    t0, t1 = path.t_span
    x0 = x0 * path.sigma(torch.tensor(t0, dtype=torch.float64))
    ref = _reference(mixture, path, x0, t0, t1)
    per, extra = PER_STEP[solver]
    errors = []
    for n in STEPS[solver]:
        x = flowforge.sample(
            mixture.field(path, "velocity"),
            x0,
            path=path,
            prediction="velocity",
            solver=solver,
            nfe=per * n + extra,
            time_grid="uniform",
        )
        errors.append(float((x - ref).abs().max()))
    slope = -np.polyfit(np.log(STEPS[solver]), np.log(errors), 1)[0]
    assert abs(slope - EXPECTED[solver]) < 0.3, (
        f"{solver} on {path_name}: order {slope:.2f}, errors {errors}"
    )


@pytest.mark.parametrize("prediction", ["data", "noise", "score"])
def test_order_independent_of_prediction_kind(mixture, prediction):
    """A solver sees the same velocity whatever the model predicts, so the error is identical."""
    path = registry.create("path", "vp_linear")
    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    kw = dict(path=path, solver="rk4", nfe=64, time_grid="uniform")
    ref = flowforge.sample(mixture.field(path, "velocity"), x0, prediction="velocity", **kw)
    out = flowforge.sample(mixture.field(path, prediction), x0, prediction=prediction, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
