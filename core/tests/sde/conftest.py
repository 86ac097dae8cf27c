"""Fixtures of the stochastic-sampler tests: the target mixture and the solver classes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from flowforge.solvers.dpm_solver_pp_sde import DPMSolverPPSDE
from flowforge.solvers.euler_maruyama import EulerMaruyama
from flowforge.solvers.predictor_corrector import PredictorCorrector
from flowforge.solvers.reverse_sde import ReverseSDE
from flowforge.targets import GaussianMixture

SDE_SOLVERS = {
    "reverse_sde": ReverseSDE,
    "euler_maruyama": EulerMaruyama,
    "dpm_solver_pp_sde": DPMSolverPPSDE,
    "predictor_corrector": PredictorCorrector,
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These solves loop over thousands of small steps, where intra-op threads only add
    overhead (on a busy machine, a lot of it); run them on one thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@pytest.fixture
def mixture() -> GaussianMixture:
    """Two well-separated 2-D components: a sample's component is clear from its position."""
    return GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0]], stds=[0.5, 0.3], weights=[0.3, 0.7])


@pytest.fixture(params=sorted(SDE_SOLVERS))
def solver_class(request: pytest.FixtureRequest) -> type:
    """Each stochastic solver class in turn."""
    return SDE_SOLVERS[request.param]
