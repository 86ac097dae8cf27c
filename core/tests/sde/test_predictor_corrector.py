"""The predictor-corrector sampler: exact NFE accounting and a corrector that relaxes to p_t."""

from __future__ import annotations

import math
import re

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.noise import SeededNormals
from flowforge.solvers.predictor_corrector import (
    PredictorCorrector,
    langevin_step,
    snr_step_size,
)
from flowforge.testing.fakes import CountingField

from .as_data import assert_fast_step_is_the_plain_step


@pytest.mark.parametrize("n_corrector", [0, 1, 3])
@pytest.mark.parametrize("predictor", ["reverse_sde", "euler_maruyama"])
def test_nfe_is_corrector_iterations_plus_one_per_step(n_corrector, predictor, mixture):
    solver = PredictorCorrector(n_corrector=n_corrector, predictor=predictor, diffusion="damped")
    path = registry.create("path", "cond_ot")
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    for steps in (2, 3, 7):
        nfe = (n_corrector + 1) * steps
        assert solver.steps_for_nfe(nfe) == steps
        field = CountingField(mixture.field(path))
        out = flowforge.sample(
            field, x, path=path, prediction="velocity", solver=solver, nfe=nfe,
            generator=torch.Generator().manual_seed(1), return_trajectory=True,
        )  # fmt: skip
        assert field.calls == out.nfe == nfe
        assert out.trajectory.shape[0] == steps + 1 and torch.isfinite(out.x).all()


def test_impossible_nfe_names_the_valid_values():
    solver = PredictorCorrector(n_corrector=2)
    for nfe in (1, 3, 4, 7):
        with pytest.raises(InvalidArgumentError) as err:
            solver.steps_for_nfe(nfe)
        assert {"6", "9", "12"} <= set(re.findall(r"\d+", str(err.value))), str(err.value)


@pytest.mark.parametrize("rule, dim, bias", [("path", 2, 0.03), ("norms", 64, 0.12)])
def test_langevin_corrector_relaxes_to_the_target(rule, dim, bias):
    """From N(0, 4 s^2) the corrector alone reaches N(0, s^2) up to the rule's own bias.

    "path": a fixed step, so only unadjusted Langevin's bias 1 / (1 - eps / (2 s^2)) ~ +1.3%.
    "norms": the step depends on the state, which biases the stationary law: variance +8%
    in 64 dimensions (+3% in 1024, +60% in 8), hence its use only in high dimension.
    """
    n, s = 4000, 0.7
    noise = SeededNormals(seed=0, shape=(n, dim), dtype=torch.float64)
    x = 2 * s * noise.normals(0)
    sigma = torch.full((n,), s, dtype=torch.float64)
    for k in range(1, 301):
        score, z = -x / s**2, noise.normals(k)
        x = langevin_step(x, score, z, snr_step_size(score, z, sigma, 0.16, rule))
    var = float(x.var())
    assert abs(var / s**2 - 1) < bias + 4 * math.sqrt(2 / (n * dim)), var


def test_norms_rule_uses_each_samples_own_norms():
    score = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    z = torch.tensor([[0.0, 5.0], [2.0, 0.0]])
    eps = snr_step_size(score, z, torch.ones(2), 0.5, "norms")
    torch.testing.assert_close(eps, torch.tensor([2 * (0.5 * 5 / 5) ** 2, 2 * (0.5 * 2) ** 2]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("noise", ["brownian_tree", "iid"])
def test_langevin_normals_are_numbered_by_step_and_iteration(noise, dtype):
    """The corrector's normals come in blocks of steps, each the draw `(step, iteration)`
    that the noise source numbers so, in the state's dtype: bit for bit with rule "norms"
    (unit normals), and times the step's `sqrt(2 eps)` with rule "path" (one rounding)."""
    x = torch.zeros(3, 2, dtype=dtype)
    grid = torch.linspace(0, 1, 6, dtype=torch.float64)[:, None].expand(6, 3)
    path = registry.create("path", "cond_ot")
    f = Dynamics(lambda x_t, t: x_t, path, "velocity")
    for rule in ("norms", "path"):
        solver = PredictorCorrector(n_corrector=2, noise=noise, step_size=rule)
        state = solver.init(f, x, grid, torch.Generator().manual_seed(0))
        langevin = state.langevin
        for step, j in [(0, 0), (0, 1), (3, 1), (4, 0)]:
            z, langevin = langevin.draw(2 * step + j, grid[step])
            unit = state.predictor.noise.normals(step, j).to(dtype)
            assert z.dtype == dtype
            if rule == "norms" and dtype == torch.float64:
                assert torch.equal(z, unit)
            elif rule == "norms":
                torch.testing.assert_close(z, unit, rtol=1e-6, atol=0)
            else:
                c = 2 * solver.snr * float(path.sigma(grid[step, :1]))
                torch.testing.assert_close(z, c * unit, rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", ["velocity", "data", "noise", "score"])
@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
def test_corrector_coefficients_are_the_langevin_step(path_name, kind, mixture, monkeypatch):
    """Rule "path": the per-step `(a, b, c)` of `x' = a x + b output + c z` give the solve
    that `langevin_step` with the prediction's own score gives, up to rounding."""
    path = registry.create("path", path_name)
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def solve():
        return flowforge.sample(
            mixture.field(path, kind), x, path=path, prediction=kind, nfe=24,
            solver=PredictorCorrector(n_corrector=2, noise="iid"), t_span=(0.05, 0.95),
            generator=torch.Generator().manual_seed(1),
        )  # fmt: skip

    fast = solve()
    monkeypatch.setattr(PredictorCorrector, "corrector", lambda *args: None)
    torch.testing.assert_close(fast, solve(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("noise", ["brownian_tree", "iid"])
def test_corrector_of_a_converted_prediction_is_the_same_step(noise, mixture):
    """A guidance hook that changes the prediction's kind takes the corrector's plain Langevin
    step with the same (scaled) normals: the solve agrees with the coefficients' up to
    rounding."""
    path = registry.create("path", "vp_cosine")
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kw = dict(
        path=path, prediction="noise", nfe=24, t_span=(0.05, 0.95),
        solver=PredictorCorrector(n_corrector=2, noise=noise),
    )  # fmt: skip
    assert_fast_step_is_the_plain_step(mixture.field(path, "noise"), x, **kw)
