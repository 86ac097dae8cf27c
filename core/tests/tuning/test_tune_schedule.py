"""Schedule tuning on an exact Gaussian-mixture field: it helps, it keeps its budget, it saves."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture
from flowforge.testing.fakes import CountingField
from flowforge.tuning import rms_error, tune_schedule

F64 = torch.float64
PATH = CondOT()
GM = GaussianMixture(
    means=[[-2.0, 0.5, 1.0], [1.5, -1.0, 0.0], [0.5, 2.0, -1.5]],
    stds=[0.15, 0.25, 0.2],
    weights=[0.3, 0.3, 0.4],
)
KW = dict(path="cond_ot", prediction="velocity", reference_nfe=160, lr=0.1)


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, dtype=F64, generator=torch.Generator().manual_seed(seed))


def solve(x, solver, nfe, grid):
    return flowforge.sample(
        GM.field(PATH), x, path=PATH, prediction="velocity", solver=solver, nfe=nfe,
        time_grid=grid,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tuned_heun():
    return tune_schedule(GM.field(PATH), noise(32, 0), solver="heun", nfe=7, budget=600, **KW)


def test_tuning_reduces_the_pilot_error(tuned_heun):
    assert tuned_heun.error_after < 0.5 * tuned_heun.error_before, tuned_heun


def test_tuned_grid_generalises_to_fresh_noise(tuned_heun):
    """The grid is fitted on 32 pilots; on 256 other starts it still beats the default grid."""
    x = noise(256, 1)
    ref = solve(x, "rk4", 400, "uniform")
    before = float(rms_error(solve(x, "heun", 7, "auto"), ref))
    after = float(rms_error(solve(x, "heun", 7, tuned_heun.tensor()), ref))
    assert after < 0.7 * before, (before, after)


def test_grid_is_increasing_with_exact_ends(tuned_heun):
    grid = tuned_heun.tensor()
    assert grid.shape == (5,)  # heun: nfe = 2 * steps - 1
    assert grid[0] == 0.0 and grid[-1] == 1.0
    assert bool((torch.diff(grid) > 0).all())


def test_budget_counts_every_field_evaluation():
    field = CountingField(GM.field(PATH))
    tuned = tune_schedule(field, noise(16, 2), solver="euler", nfe=4, budget=250, **KW)
    assert field.calls == tuned.evaluations <= 250
    assert tuned.evaluations == 160 + 4 * ((250 - 160) // 4)


def test_budget_too_small_raises_with_the_minimum():
    with pytest.raises(InvalidArgumentError, match="at least 165"):
        tune_schedule(GM.field(PATH), noise(8, 3), solver="heun", nfe=5, budget=100, **KW)


def test_solver_search_keeps_the_best_candidate():
    tuned = tune_schedule(
        GM.field(PATH), noise(16, 4), solver=["euler", "midpoint"], nfe=8, budget=400, **KW
    )
    assert set(tuned.candidates) == {"euler", "midpoint"}
    assert tuned.solver == min(tuned.candidates, key=tuned.candidates.get) == "midpoint"
    assert tuned.error_after == tuned.candidates["midpoint"]


def test_rejects_what_has_no_grid_to_tune():
    with pytest.raises(InvalidArgumentError, match="x_pilot"):
        tune_schedule(GM.field(PATH), torch.zeros(0, 3), solver="heun", nfe=5, **KW)
    with pytest.raises(InvalidArgumentError, match="nfe=4"):
        tune_schedule(GM.field(PATH), noise(4, 5), solver="heun", nfe=4, **KW)
