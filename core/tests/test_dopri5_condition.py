"""dopri5 with a per-sample condition: each evaluation sees the rows of the samples it runs."""

from __future__ import annotations

import math

import torch

import flowforge
from flowforge.field import Dynamics
from flowforge.paths import CondOT
from flowforge.solvers.dopri5 import Dopri5


def decay(x_t, t, rate, offset):
    """dx/dt = -rate_b x + offset: `rate (B,)` per sample, `offset (D,)` shared."""
    if rate.shape[0] != x_t.shape[0]:
        raise AssertionError(f"condition of {rate.shape[0]} rows for {x_t.shape[0]} samples")
    return -rate[:, None] * x_t + offset


def test_per_sample_condition_follows_the_running_samples():
    """Fast and slow samples finish after different numbers of steps, so later evaluations run a
    subset of the batch; each sample matches its own exact solution."""
    rate = torch.tensor([0.1, 8.0, 0.5, 20.0], dtype=torch.float64)
    offset = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)  # shared: first dim 3, not 4
    x0 = torch.ones(4, 3, dtype=torch.float64)
    out = flowforge.sample(
        decay,
        x0,
        path=CondOT(),
        prediction="velocity",
        solver=Dopri5(rtol=1e-8, atol=1e-8),
        nfe=None,
        cond={"rate": rate, "offset": offset},
        return_trajectory=True,
    )
    exact = torch.exp(-rate)[:, None] * x0
    assert (out.x - exact).abs().max() < 1e-6
    # the samples did not all take the same steps: the subset path was exercised
    finished = [int((t == 1.0).sum()) for t in out.times]
    assert len(set(finished)) > 2


def test_rows_restores_the_condition():
    f = Dynamics(decay, CondOT(), "velocity", cond={"rate": torch.arange(5.0), "offset": 1.5})
    with f.rows(torch.tensor([1, 3]), 5):
        assert torch.equal(f.cond["rate"], torch.tensor([1.0, 3.0]))
        assert f.cond["offset"] == 1.5
    assert torch.equal(f.cond["rate"], torch.arange(5.0))
    assert math.isclose(f.cond["offset"], 1.5)
