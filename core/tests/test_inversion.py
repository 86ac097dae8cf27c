"""flowforge.invert: BDIA round trips exactly in float32; other ODE solvers invert approximately."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.paths import PREDICTIONS
from flowforge.solvers.bdia import BDIA
from flowforge.solvers.ddim import DDIM
from flowforge.solvers.dopri5 import Dopri5
from flowforge.testing.convergence import MIXTURE

PATHS = ["cond_ot", "vp_cosine", "vp_linear", "edm"]


class RandomMLP(nn.Module):
    """An untrained (seeded) MLP velocity field `(x (B, 2), t (B,)) -> (B, 2)`."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.out = nn.Linear(64, 2)

    def forward(self, x, t):
        return self.out(self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1)))


def _noise(path, n=256, seed=1, dtype=torch.float32):
    """Source samples at the path's t0 and the scale sigma(t0) they are measured in."""
    scale = float(path.sigma(torch.tensor(path.t_span[0], dtype=torch.float64)))
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return scale * z, scale


def _round_trip(field, path, prediction, nfe, solver="bdia", n=256):
    x0, scale = _noise(path, n)
    kw = dict(path=path, prediction=prediction, solver=solver)
    out = flowforge.sample(field, x0, nfe=nfe, return_trajectory=True, **kw)
    back = flowforge.invert(field, out, nfe=None, **kw)
    return float((back - x0).abs().max()) / scale


@pytest.mark.parametrize("nfe", [8, 50])
@pytest.mark.parametrize("model", ["mixture", "mlp"])
@pytest.mark.parametrize("path_name", PATHS)
def test_bdia_round_trip_is_exact_in_float32(path_name, model, nfe):
    """noise -> data -> noise; measured 1e-8 to 3e-6 (in units of sigma(t0)), up to 200 steps."""
    path = registry.create("path", path_name)
    field = MIXTURE.field(path) if model == "mixture" else RandomMLP()
    with torch.no_grad():
        assert _round_trip(field, path, "velocity", nfe) < 1e-5


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_bdia_round_trip_for_every_prediction_kind(prediction):
    """edm has alpha = 1 and sigma > 0 everywhere, so every kind is finite on the whole span."""
    path = registry.create("path", "edm")
    assert _round_trip(MIXTURE.field(path, prediction), path, prediction, 20) < 1e-5


def test_bdia_inverse_recovers_every_state_with_the_grid():
    path = registry.create("path", "vp_cosine")
    x0, _ = _noise(path, 64)
    kw = dict(path=path, prediction="velocity", solver="bdia")
    field = MIXTURE.field(path)
    out = flowforge.sample(field, x0, nfe=12, return_trajectory=True, **kw)
    back = flowforge.invert(field, out, nfe=11, return_trajectory=True, **kw)
    assert back.nfe == 11, "S - 1 model calls for S steps"
    assert torch.equal(back.times, out.times.flip(0))
    torch.testing.assert_close(back.trajectory, out.trajectory.flip(0), rtol=0, atol=1e-5)


def test_bdia_from_a_data_tensor_is_approximate():
    """Without the state before the last, the inverse starts with a DDIM step: O(h^2) off."""
    path = registry.create("path", "cond_ot")
    x0, _ = _noise(path, 64, dtype=torch.float64)
    field = MIXTURE.field(path)
    kw = dict(path=path, prediction="velocity", solver="bdia")
    errors = []
    for nfe in (16, 64):
        x1 = flowforge.sample(field, x0, nfe=nfe, **kw)
        back = flowforge.invert(field, x1, nfe=nfe, return_trajectory=True, **kw)
        assert back.nfe == nfe
        errors.append(float((back.x - x0).abs().max()))
    assert errors[0] > 1e-4, "a tensor alone cannot be inverted exactly"
    assert errors[1] < errors[0] / 8, errors


def test_bdia_with_gamma_zero_is_ddim_and_not_invertible():
    path = registry.create("path", "vp_cosine")
    x0, _ = _noise(path, 16, dtype=torch.float64)
    kw = dict(path=path, prediction="velocity", nfe=10, time_grid="uniform")
    bdia = flowforge.sample(MIXTURE.field(path), x0, solver=BDIA(gamma=0.0), **kw)
    ddim = flowforge.sample(MIXTURE.field(path), x0, solver=DDIM(), **kw)
    torch.testing.assert_close(bdia, ddim, rtol=1e-12, atol=1e-12)
    out = flowforge.sample(
        MIXTURE.field(path), x0, solver=BDIA(gamma=0.0), return_trajectory=True, **kw
    )
    with pytest.raises(InvalidArgumentError, match="gamma=1"):
        flowforge.invert(
            MIXTURE.field(path), out, path=path, prediction="velocity", solver=BDIA(gamma=0.0),
            nfe=None,
        )  # fmt: skip


def test_bdia_gamma_below_one_inverts_while_rounding_stays_small():
    """Inversion divides by gamma each step: fine for 0.9 over 10 steps (0.9^-10 = 2.9)."""
    path = registry.create("path", "cond_ot")
    assert _round_trip(MIXTURE.field(path), path, "velocity", 10, solver=BDIA(gamma=0.9)) < 1e-5


def test_any_ode_solver_inverts_at_its_order():
    """Data from a tight dopri5 solve, inverted by rk4 (order 4) along the reversed path span."""
    path = registry.create("path", "vp_cosine")
    x0, _ = _noise(path, 32, dtype=torch.float64)
    field = MIXTURE.field(path)
    kw = dict(path=path, prediction="velocity")
    x1 = flowforge.sample(field, x0, solver=Dopri5(rtol=1e-10, atol=1e-10), nfe=None, **kw)
    errors = []
    for nfe in (40, 80):
        back = flowforge.invert(field, x1, solver="rk4", nfe=nfe, return_trajectory=True, **kw)
        assert torch.equal(back.times[0], torch.ones(32, dtype=torch.float64))
        assert torch.equal(back.times[-1], torch.zeros(32, dtype=torch.float64))
        errors.append(float((back.x - x0).abs().max()))
    assert errors[1] < errors[0] / 10, errors
    adaptive = flowforge.invert(field, x1, solver="dopri5", nfe=None, **kw)
    torch.testing.assert_close(adaptive, x0, rtol=0, atol=1e-4)


def test_invalid_inversions_say_what_to_do():
    path = registry.create("path", "cond_ot")
    x0, _ = _noise(path, 4)
    field = MIXTURE.field(path)
    kw = dict(path=path, prediction="velocity")
    out = flowforge.sample(field, x0, solver="bdia", nfe=6, return_trajectory=True, **kw)
    with pytest.raises(InvalidArgumentError, match="nfe=5"):
        flowforge.invert(field, out, solver="bdia", nfe=6, **kw)
    with pytest.raises(InvalidArgumentError, match="t_span"):
        flowforge.invert(field, out, solver="bdia", nfe=None, t_span=(1.0, 0.0), **kw)
    with pytest.raises(InvalidArgumentError, match="ODE solver"):
        flowforge.invert(field, out.x, solver="euler_maruyama", nfe=6, **kw)
