"""With eta = 0 every stochastic sampler is its deterministic counterpart: the same numbers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.noise import BrownianTree, SeededNormals
from flowforge.solvers import Euler, reverse_sde
from flowforge.solvers.ddim import DDIM
from flowforge.solvers.dpm_solver_pp import DPMSolverPP
from flowforge.solvers.dpm_solver_pp_sde import DPMSolverPPSDE
from flowforge.solvers.euler_maruyama import EulerMaruyama
from flowforge.solvers.predictor_corrector import PredictorCorrector
from flowforge.solvers.reverse_sde import ReverseSDE

PAIRS = {
    "reverse_sde": (ReverseSDE(eta=0.0), DDIM()),
    "dpm_solver_pp_sde": (DPMSolverPPSDE(eta=0.0), DPMSolverPP(order=2)),
    "euler_maruyama": (EulerMaruyama(eta=0.0), Euler()),
    "predictor_corrector": (PredictorCorrector(eta=0.0, n_corrector=0), DDIM()),
    "pc_euler_maruyama": (
        PredictorCorrector(eta=0.0, n_corrector=0, predictor="euler_maruyama"),
        Euler(),
    ),
}


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "vp_linear", "edm"])
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_eta_zero_equals_the_ode_solver(pair, path_name, mixture):
    sde, ode = PAIRS[pair]
    path = registry.create("path", path_name)
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x * path.sigma(torch.zeros((), dtype=torch.float64))
    for prediction in ("velocity", "noise"):
        # noise predictions have no finite velocity where alpha = 0: start just after it
        span = None if prediction == "velocity" else (1e-3, path.t_span[1])
        for grid in ("uniform", "logsnr"):
            kw = dict(path=path, prediction=prediction, nfe=10, t_span=span, time_grid=grid)
            field = mixture.field(path, prediction)
            out = flowforge.sample(field, x, solver=sde, generator=torch.Generator(), **kw)
            assert torch.equal(out, flowforge.sample(field, x, solver=ode, **kw)), (
                grid,
                prediction,
            )


@pytest.mark.parametrize("noise", ["brownian_tree", "iid"])
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_eta_zero_draws_no_noise(pair, noise, mixture, monkeypatch):
    """At noise level 0 (a Python float) a sampler skips the noise, rather than drawing it and
    multiplying by 0: no seed taken from the generator, no noise state, no normals made."""

    def refuse(*args, **kwargs):
        raise AssertionError("noise made at eta = 0")

    monkeypatch.setattr(reverse_sde, "noise_state", refuse)
    monkeypatch.setattr(SeededNormals, "keyed", refuse)
    monkeypatch.setattr(BrownianTree, "query", refuse)
    path = registry.create("path", "vp_cosine")
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sde = dataclasses.replace(PAIRS[pair][0], noise=noise)
    generator = torch.Generator().manual_seed(1)
    state = generator.get_state()
    out = flowforge.sample(
        mixture.field(path), x, path=path, prediction="velocity", solver=sde, nfe=8,
        generator=generator,
    )  # fmt: skip
    assert bool(torch.isfinite(out).all()) and torch.equal(generator.get_state(), state)
