"""Euler-Maruyama's step as precomputed coefficients on (x, output, noise) is the textbook step."""

from __future__ import annotations

import torch

import flowforge
from flowforge import registry
from flowforge.guidance import Guidance
from flowforge.solvers.euler_maruyama import EulerMaruyama


class AsData(Guidance):
    """Hands the solver the same prediction as a data prediction (another kind than the
    model's), so the step converts it as it is instead of using the grid's coefficients."""

    def on_prediction(self, pred, dynamics):
        return pred.with_value(pred.data, "data")


def test_coefficients_equal_the_drift_and_diffusion_of_the_prediction(mixture):
    path = registry.create("path", "vp_cosine")
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for noise in ("brownian_tree", "iid"):
        kw = dict(
            path=path, prediction="noise", solver=EulerMaruyama(eta=1.0, noise=noise), nfe=20,
            t_span=(0.05, 0.95),
        )  # fmt: skip
        field = mixture.field(path, "noise")
        fast = flowforge.sample(field, x, generator=torch.Generator().manual_seed(1), **kw)
        plain = flowforge.sample(
            field, x, guidance=AsData(), generator=torch.Generator().manual_seed(1), **kw
        )
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-10)
