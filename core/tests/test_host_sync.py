"""No host synchronisation inside a step, for every registered fixed-step solver (on the CPU).

`flowforge.driver.run_steps` is the per-step region of every fixed-step solve (solver steps,
the field, guidance hooks, NaN/Inf bookkeeping). These tests run it under
`flowforge.graph.forbid_host_sync`, which raises on any host read of a tensor value (item, bool,
an `if` on a tensor, tolist, cpu, nonzero, mask indexing, torch.tensor of host data), so a
solver that would stall a GPU or break CUDA-graph capture fails here, without a GPU. Work
before the loop (`Solver.init`, the time grid) may read the host and is not guarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

import flowforge
from flowforge import driver, registry
from flowforge.errors import InvalidArgumentError
from flowforge.graph import forbid_host_sync
from flowforge.guidance import Guidance
from flowforge.solvers import Adaptive, Discrete, Euler
from flowforge.targets import GaussianMixture
from flowforge.testing.contracts.solver import valid_nfes

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.5, 0.4], weights=[0.4, 0.6])
# One prediction kind per path, so conversions between all of them run inside the region.
CASES = [("cond_ot", "velocity"), ("vp_cosine", "noise"), ("edm", "data")]


def fixed_step_solvers() -> list[str]:
    return [
        name
        for name in registry.names("solver")
        if not isinstance(registry.create("solver", name), Adaptive | Discrete)
    ]


class Nudge(Guidance):
    """Touches both per-step hook points with ordinary tensor arithmetic."""

    def on_prediction(self, pred, dynamics):
        return pred.with_value(pred.value * 0.99)

    def after_step(self, x, t, dynamics):
        return x + 1e-3 * t[:, None]


@pytest.fixture
def guarded_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the driver's per-step region under `forbid_host_sync`; counts the guarded loops."""
    calls: list[int] = []
    original = driver.run_steps

    def guarded(*args: Any, **kwargs: Any):
        calls.append(1)
        with forbid_host_sync():
            return original(*args, **kwargs)

    monkeypatch.setattr(driver, "run_steps", guarded)
    return calls


def _solve(solver, path="cond_ot", prediction="velocity", **kw):
    nfe = next(n for n in valid_nfes(registry.resolve("solver", solver), 24) if n >= 6)
    path_obj = registry.create("path", path)
    return flowforge.sample(
        GM.field(path_obj, prediction),
        torch.randn(4, 2, generator=torch.Generator().manual_seed(0)),
        path=path_obj,
        prediction=prediction,
        solver=solver,
        nfe=nfe,
        t_span=(0.01, 0.99),
        generator=torch.Generator().manual_seed(1),
        **kw,
    )


@pytest.mark.parametrize(("path", "prediction"), CASES)
@pytest.mark.parametrize("solver", fixed_step_solvers())
def test_steps_never_sync(solver, path, prediction, guarded_steps):
    res = _solve(solver, path, prediction, guidance=Nudge(), return_trajectory=True)
    assert guarded_steps == [1], "the solve did not go through driver.run_steps"
    assert torch.isfinite(res.trajectory).all()


@pytest.mark.parametrize("solver", fixed_step_solvers())
def test_steps_never_sync_in_mixed_precision(solver, guarded_steps):
    """The casts at the network boundary (solver_dtype) are inside the region too."""
    x = _solve(solver, solver_dtype=torch.float64)
    assert guarded_steps == [1] and x.dtype == torch.float64


# Each leak is a pattern that synchronises on CUDA; the guard must catch every one.
LEAKS = {
    "item": lambda x, t: x.sum().item(),
    "if_on_tensor": lambda x, t: 1 if (x > 0).any() else 0,
    "float_of_time": lambda x, t: float(t[0]),
    "index_with_tensor": lambda x, t: range(2)[(x.sum() > 0).long()],
    "tolist": lambda x, t: t.tolist(),
    "cpu": lambda x, t: x.cpu(),
    "to_cpu": lambda x, t: x.to("cpu"),
    "nonzero": lambda x, t: (x > 0).nonzero(),
    "mask_index": lambda x, t: x[x > 0],
    "mask_assign": lambda x, t: x.clone().__setitem__(x > 0, 0.0),
    "where_one_arg": lambda x, t: torch.where(x > 0),
    "host_tensor": lambda x, t: x * torch.tensor(0.5),
    "unique": lambda x, t: torch.unique(x),
}


@dataclass(frozen=True)
class Leaky(Euler):
    """Euler with a host synchronisation in its step (or, with `in_init`, only in its init)."""

    leak: str = "item"
    in_init: bool = False

    def init(self, f, x, grid, generator=None):
        if self.in_init:
            LEAKS[self.leak](x, grid[0])
        return None

    def step(self, f, x, t0, t1, state, info):
        if not self.in_init:
            LEAKS[self.leak](x, t0)
        return super().step(f, x, t0, t1, state, info)


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_guard_catches_each_kind_of_sync(leak, guarded_steps):
    with pytest.raises(InvalidArgumentError, match="host synchronisation inside the per-step"):
        _solve(Leaky(leak=leak))


@pytest.mark.parametrize("leak", ["item", "if_on_tensor", "nonzero"])
def test_work_before_the_loop_may_sync(leak, guarded_steps):
    """Solver.init runs before the per-step region: reading the host there is allowed."""
    x = _solve(Leaky(leak=leak, in_init=True))
    assert guarded_steps == [1] and torch.isfinite(x).all()


def test_guard_allows_ordinary_tensor_code():
    x = torch.randn(8, 3)
    with forbid_host_sync():
        y = torch.where(x > 0, x, -x).sum(0) / x.shape[0]
        z = torch.full_like(y, 2.0) * y.clamp(min=0.1) + torch.zeros(3).to(x)
        w = x[:, torch.arange(2)] @ torch.ones(2, 1, dtype=x.dtype)
    assert z.shape == (3,) and w.shape == (8, 1)


def test_cpu_only_blocks_may_read_and_the_guard_resumes_after_them():
    from flowforge.graph.host_sync import cpu_only

    x = torch.randn(8, 3)
    with forbid_host_sync():
        with cpu_only():
            values = (float(x[0, 0]), x[:2].tolist(), bool((x == x).all()))
        with pytest.raises(InvalidArgumentError, match="host synchronisation"):
            float(x[0, 0])
    assert values[2] and len(values[1]) == 2


def test_a_distillation_style_per_sample_rk4_solve_never_syncs():
    """rk4's CPU programs read the grid (CPU only); a solve with per-sample times, as a
    distillation teacher makes them, must still pass the guard."""
    target = GaussianMixture(torch.tensor([[-2.0], [2.0]], dtype=torch.float64), 0.5)
    path = registry.create("path", "cond_ot")
    x = torch.randn(16, 1, dtype=torch.float64)
    s, u = torch.rand(16, dtype=torch.float64) * 0.5, torch.full((16,), 0.9, dtype=torch.float64)
    with forbid_host_sync():
        out = flowforge.sample(
            target.field(path, "velocity"),
            x,
            path=path,
            prediction="velocity",
            solver="rk4",
            nfe=8,
            t_span=(s, u),
            check_finite=False,
        )
    assert torch.isfinite(out).all()
