"""Euler-Maruyama's step as precomputed coefficients on (x, output, noise) is the textbook step."""

from __future__ import annotations

import torch

from flowforge import registry
from flowforge.solvers.euler_maruyama import EulerMaruyama

from .as_data import assert_fast_step_is_the_plain_step


def test_coefficients_equal_the_drift_and_diffusion_of_the_prediction(mixture):
    path = registry.create("path", "vp_cosine")
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for noise in ("brownian_tree", "iid"):
        kw = dict(
            path=path, prediction="noise", solver=EulerMaruyama(eta=1.0, noise=noise), nfe=20,
            t_span=(0.05, 0.95),
        )  # fmt: skip
        assert_fast_step_is_the_plain_step(mixture.field(path, "noise"), x, **kw)
