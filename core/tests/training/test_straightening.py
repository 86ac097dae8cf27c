"""Minibatch OT straightens the learned flow; W-CFM sits between it and independent pairs.

A small MLP is trained for 300 steps on a 4-mode `GaussianMixture` in 2-D and 16-D with each
coupling, everything else equal (seed, data, steps, time sampler). Measured on the learned
field: the path curvature `E int ||(x_1 - x_0) - v(x_t, t)||^2 dt` along its RK4 trajectories
(`trajectory_curvature`), and the 1-step error, the sliced Wasserstein distance between
one-Euler-step samples and exact samples of the mixture.

Bounds: over training seeds 0-3 the ratios were, OT / independent: curvature <= 0.23, 1-step
<= 0.62; W-CFM / independent: <= 0.79 and <= 0.84; W-CFM / OT: >= 3.2 and >= 1.3 (the 16-D
1-step error is the closest call). The asserted factors (0.5 and 0.7 for OT, 0.9 and 1.1
around W-CFM) hold for all of them; runs are deterministic on the CPU.
"""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.metrics import sliced_wasserstein, trajectory_curvature
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.training import Regression, Trainer

from .conftest import four_modes

COUPLINGS = ("independent", "wcfm", "exact_ot")


def _measure(dim: int, coupling: str, seed: int = 0) -> tuple[float, float]:
    """(curvature, 1-step error) of a flow trained with `coupling`."""
    target = four_modes(dim)
    data = target.sample(4096, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(seed)
    model = MLP(dim, 64, 3, 16)
    config = TrainSpec(
        steps=300,
        batch_size=128,
        lr=3e-3,
        ema_decay=0.0,
        checkpoint_every=1000,
        log_every=1000,
        coupling=coupling,
    )
    gen = torch.Generator().manual_seed(seed)
    objective = Regression.from_spec(CondOT(), "velocity", data, config)
    Trainer(model, objective, config, generator=gen).fit()
    model.eval()
    x_0 = torch.randn(2000, dim, generator=torch.Generator().manual_seed(7))
    curvature, _ = trajectory_curvature(model, x_0, nfe=40)
    with torch.no_grad():
        one = flowforge.sample(
            model, x_0, path="cond_ot", prediction="velocity", solver="euler", nfe=1
        )
    exact = target.sample(2000, generator=torch.Generator().manual_seed(9))
    error = sliced_wasserstein(one, exact, 200, torch.Generator().manual_seed(0))
    return float(curvature.mean()), float(error)


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 16])
def test_ot_lowers_curvature_and_one_step_error_and_wcfm_sits_between(dim):
    curvature, one_step = {}, {}
    for name in COUPLINGS:
        curvature[name], one_step[name] = _measure(dim, name)
    for measure, ot_factor in ((curvature, 0.5), (one_step, 0.7)):
        assert measure["exact_ot"] < ot_factor * measure["independent"], measure
        assert 1.1 * measure["exact_ot"] < measure["wcfm"] < 0.9 * measure["independent"], measure
