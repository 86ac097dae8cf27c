"""Euler-Maruyama converges pathwise, at strong order 1, to the SDE solution of the same W."""

from __future__ import annotations

import numpy as np
import torch

import flowforge
from flowforge import registry
from flowforge.solvers.euler_maruyama import EulerMaruyama
from flowforge.solvers.reverse_sde import ReverseSDE

# Uniform grids of up to 1024 = 2^10 steps on [0, 1] only query dyadic times of level <= 10,
# where a tree of depth 10 is exactly the default tree's path (test_noise): same W, less work.
DEPTH = 10
STEPS = [8, 16, 32, 64]
REFERENCE_STEPS = 1024


def test_euler_maruyama_has_strong_order_one_for_this_additive_noise(mixture):
    """Median over 200 samples of |X_N - X_ref|, X_ref from 1024 steps on the same Brownian path.

    The noise g(t) dW is additive, so the Milstein term vanishes and Euler-Maruyama's strong
    order is 1 (not the 1/2 of state-dependent noise). The median is used because a sample
    that sits on the boundary between the two modes may switch modes between step counts.
    """
    path = registry.create("path", "cond_ot")
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    solver = EulerMaruyama(eta=1.0, brownian_depth=DEPTH)

    def solve(steps: int, method=solver) -> torch.Tensor:
        gen = torch.Generator().manual_seed(10)
        return flowforge.sample(
            mixture.field(path), x, path=path, prediction="velocity", solver=method,
            nfe=steps, time_grid="uniform", generator=gen,
        )  # fmt: skip

    ref = solve(REFERENCE_STEPS)
    errors = [float((solve(n) - ref).norm(dim=1).median()) for n in STEPS]
    slope = -np.polyfit(np.log(STEPS), np.log(errors), 1)[0]
    print(f"euler_maruyama strong order {slope:.3f}, median errors {errors}")
    assert abs(slope - 1.0) < 0.15, f"strong order {slope:.2f}; median errors {errors}"
    assert errors[-1] < 0.05
    # The exponential integrator converges to the same pathwise solution.
    exponential = ReverseSDE(eta=1.0, diffusion="damped", brownian_depth=DEPTH)
    gap = float((solve(256, exponential) - ref).norm(dim=1).median())
    print(f"reverse_sde with 256 steps: median distance {gap:.3g}")
    assert gap < 0.025, f"reverse_sde with 256 steps is {gap:.3g} away"
