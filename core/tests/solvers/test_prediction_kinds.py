"""Every exponential solver gives the same answer whatever the model predicts, and is finite at
the end points wherever the prediction defines the velocity there."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import NumericalError
from flowforge.solvers import ExplicitRK, Solver
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.4, 0.6], weights=[0.4, 0.6])
SOLVERS = [
    "ddim",
    "dpm_solver",
    "dpm_solver_pp",
    "unipc",
    "deis",
    "ipndm",
    "dpm_solver_pp_hb",
    "dpm_solver_pp_ghb",
]
# The reference-faithful variants fold the conversions into the same engine weights.
SOLVERS += [
    pytest.param(registry.create("solver", name, **params), id=f"{name}{params}")
    for name, params in [
        ("dpm_solver_pp", {"order": 3, "variable": "lambda"}),
        ("dpm_solver_pp", {"order": 3, "variable": "lambda", "reference": "k-diffusion"}),
        ("unipc", {"variable": "lambda"}),
        ("unipc", {"variable": "lambda", "corrector": False}),
        ("deis", {"variable": "lambda"}),
        ("ipndm", {"variable": "rho"}),
    ]
]


def solve(solver: str | Solver, path_name: str, kind: str, t_span=None, nfe: int = 10):
    path = registry.create("path", path_name)
    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    return flowforge.sample(
        GM.field(path, kind), x0, path=path, prediction=kind, solver=solver, nfe=nfe,
        t_span=t_span,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["data", "noise", "score"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_same_answer_for_every_prediction_kind(solver, kind):
    ref = solve(solver, "vp_linear", "velocity")
    torch.testing.assert_close(solve(solver, "vp_linear", kind), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_finite_from_pure_noise_to_data(solver, path_name):
    """Velocity and data predictions define the velocity on all of [0, 1]: finite, and equal."""
    velocity = solve(solver, path_name, "velocity", (0.0, 1.0))
    data = solve(solver, path_name, "data", (0.0, 1.0))
    assert bool(torch.isfinite(velocity).all())
    torch.testing.assert_close(data, velocity, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["noise", "score"])
@pytest.mark.parametrize("solver", ["ddim", "dpm_solver_pp", "unipc"])
def test_noise_prediction_at_pure_noise_is_a_clear_error(solver, kind):
    """At alpha = 0 a noise prediction carries no information on the data: no velocity."""
    with pytest.raises(NumericalError, match="alpha"):
        solve(solver, "cond_ot", kind, (0.0, 1.0))


@pytest.mark.parametrize("kind", ["noise", "score"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_noise_prediction_is_finite_up_to_the_data_end(solver, kind):
    """The data end is never evaluated, so noise/score predictions reach t = 1 exactly."""
    ref = solve(solver, "vp_cosine", "velocity", (0.05, 1.0))
    torch.testing.assert_close(solve(solver, "vp_cosine", kind, (0.05, 1.0)), ref)


@pytest.mark.parametrize("kind", ["data", "noise", "score"])
@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint", "rk4"])
def test_runge_kutta_converts_with_the_grids_coefficients(solver, kind, monkeypatch):
    """The precomputed `velocity = p x + q output` of every stage equals the prediction's own
    conversion, for a shared grid (numbers) and per-sample spans (tensors) alike."""
    t0 = torch.tensor([0.05, 0.1, 0.05, 0.2, 0.05, 0.3, 0.05, 0.1], dtype=torch.float64)
    nfe = {"heun": 9, "rk4": 12}.get(solver, 10)
    runs = [solve(solver, "vp_cosine", kind, span, nfe) for span in [(0.05, 0.95), (t0, 0.95)]]
    monkeypatch.setattr(ExplicitRK, "init", lambda *args, **kwargs: None)
    for span, fast in zip([(0.05, 0.95), (t0, 0.95)], runs, strict=True):
        plain = solve(solver, "vp_cosine", kind, span, nfe)
        assert torch.isfinite(plain).all()
        torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
