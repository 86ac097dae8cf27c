"""nfe is exact for every value, and the singlestep order schedule follows the paper."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.solvers.dpm_solver import order_schedule
from flowforge.targets import GaussianMixture
from flowforge.testing import CountingField

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.4, 0.6])
SOLVERS = [
    ("ddim", {}),
    ("dpm_solver", {"order": 1}),
    ("dpm_solver", {"order": 2}),
    ("dpm_solver", {"order": 3}),
    ("dpm_solver_pp", {"order": 3}),
    ("unipc", {"order": 3, "variant": "bh1"}),
    ("deis", {"order": 3}),
    ("ipndm", {"order": 4}),
    ("dpm_solver_pp_hb", {}),
    ("dpm_solver_pp_ghb", {}),
]


@pytest.mark.parametrize(("name", "params"), SOLVERS)
def test_exact_nfe_for_every_value(name, params):
    solver = registry.create("solver", name, **params)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    for nfe in range(1, 13):
        field = CountingField(GM.field(CondOT()))
        out = flowforge.sample(
            field, x, path="cond_ot", prediction="velocity", solver=solver, nfe=nfe,
            return_trajectory=True,
        )  # fmt: skip
        assert field.calls == out.nfe == nfe
        assert bool(torch.isfinite(out.x).all())
    with pytest.raises(InvalidArgumentError, match="nfe"):
        solver.steps_for_nfe(0)


@pytest.mark.parametrize(
    ("nfe", "order", "want"),
    [
        (10, 3, [3, 3, 3, 1]),
        (9, 3, [3, 3, 2, 1]),
        (11, 3, [3, 3, 3, 2]),
        (3, 3, [2, 1]),
        (2, 3, [2]),
        (1, 3, [1]),
        (7, 2, [2, 2, 2, 1]),
        (4, 1, [1, 1, 1, 1]),
    ],
)
def test_dpm_solver_order_schedule(nfe, order, want):
    assert order_schedule(nfe, order) == want
    assert sum(order_schedule(nfe, order)) == nfe
