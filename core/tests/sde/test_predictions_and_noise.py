"""Every prediction kind gives the same sample; the noise is reproducible and consistent."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.solvers import SDE

F64 = torch.float64


def _sample(mixture, solver, x, nfe, seed, path="cond_ot", prediction="velocity", **kw):
    path = registry.create("path", path)
    field = mixture.field(path, prediction)
    gen = torch.Generator().manual_seed(seed)
    return flowforge.sample(
        field, x, path=path, prediction=prediction, solver=solver, nfe=nfe, generator=gen, **kw
    )


def _start(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("path", ["cond_ot", "vp_cosine", "edm"])
def test_every_prediction_kind_gives_the_same_sample(solver_class, path, mixture):
    """The solvers convert internally; away from alpha = 0 every kind is finite."""
    solver = solver_class()
    assert isinstance(solver, SDE)
    x = _start(8) * registry.create("path", path).sigma(torch.tensor(0.05, dtype=F64))
    kw = dict(t_span=(0.05, 1.0), nfe=solver.evaluations_per_step * 12)
    ref = _sample(mixture, solver, x, seed=3, path=path, **kw)
    assert torch.isfinite(ref).all()
    for kind in ("data", "noise", "score"):
        out = _sample(mixture, solver, x, seed=3, path=path, prediction=kind, **kw)
        torch.testing.assert_close(out, ref, rtol=1e-8, atol=1e-8, msg=kind)


def test_a_sample_does_not_depend_on_its_batch(solver_class, mixture):
    x = _start(8)
    nfe = solver_class().evaluations_per_step * 6
    full = _sample(mixture, solver_class(), x, nfe, seed=1)
    part = _sample(mixture, solver_class(), x[:3], nfe, seed=1)
    assert torch.equal(part, full[:3])


@pytest.mark.parametrize("name", ["reverse_sde", "euler_maruyama", "dpm_solver_pp_sde"])
def test_coarse_and_fine_grids_see_the_same_brownian_path(name, mixture):
    """Same seed: 32 and 64 steps land close together; another seed lands far away.

    (predictor_corrector's Langevin noise is drawn per step, not along the path, so its
    samples at different step counts are not coupled; its predictor's path is this one.)
    """
    x = _start(32)
    kw = dict(time_grid="uniform", t_span=(0.02, 1.0))
    fine = _sample(mixture, name, x, 64, seed=5, **kw)
    coarse = _sample(mixture, name, x, 32, seed=5, **kw)
    other = _sample(mixture, name, x, 64, seed=6, **kw)
    same = (coarse - fine).norm(dim=1).median()
    apart = (other - fine).norm(dim=1).median()
    assert same < 0.25 * apart, (float(same), float(apart))


def test_without_a_generator_the_global_rng_seeds_the_noise(mixture):
    path = registry.create("path", "cond_ot")
    kw = dict(path=path, prediction="velocity", solver="reverse_sde", nfe=8)
    x = _start(4)
    torch.manual_seed(0)
    a = flowforge.sample(mixture.field(path), x, **kw)
    torch.manual_seed(0)
    assert torch.equal(a, flowforge.sample(mixture.field(path), x, **kw))
    assert not torch.equal(a, flowforge.sample(mixture.field(path), x, **kw))
