"""The CPU programs of the explicit RK methods: the same steps as the tensor form, in fewer ops."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.solvers import ExplicitRK, explicit_rk
from flowforge.solvers.exponential import Schedule
from flowforge.solvers.host_program import sum_ops
from flowforge.solvers.rk_program import HostRKStep
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.4, 0.6], weights=[0.4, 0.6])
NFE = {"euler": 10, "heun": 9, "midpoint": 10, "rk4": 12}
F64 = dict(dtype=torch.float64)


def _solve(name: str, path_name: str, kind: str) -> torch.Tensor:
    path = registry.create("path", path_name)
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(2), **F64)
    return flowforge.sample(
        GM.field(path, kind), x0, path=path, prediction=kind, solver=name, nfe=NFE[name],
        t_span=(0.05, 0.95),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["velocity", "data", "noise"])
@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
@pytest.mark.parametrize("name", sorted(NFE))
def test_cpu_program_equals_the_tensor_form(name, path_name, kind, monkeypatch):
    """A shared grid on the CPU runs the program; the tensor form (per-stage conversion
    coefficients, `addcmul` with the step size) gives the same solve up to rounding."""
    seen = []
    init = ExplicitRK.init
    monkeypatch.setattr(ExplicitRK, "init", lambda *a, **k: seen.append(init(*a, **k)) or seen[-1])
    fast = _solve(name, path_name, kind)
    assert all(isinstance(s, HostRKStep) for s in seen[-1])
    tensor_form = lambda self, f, x, grid, generator=None: (
        None
        if f.prediction == "velocity"
        else explicit_rk.velocity_coefficients(f, x, grid, self.c)
    )
    monkeypatch.setattr(ExplicitRK, "init", tensor_form)
    torch.testing.assert_close(fast, _solve(name, path_name, kind), rtol=1e-12, atol=1e-12)


def _programs(name: str, kind: str, steps: int = 8):
    grid = torch.linspace(0.05, 0.95, steps + 1, **F64)[:, None]
    schedule = Schedule(registry.create("path", "vp_cosine"), kind, grid)
    return registry.create("solver", name).host_programs(schedule)


@pytest.mark.parametrize(
    ("name", "velocity", "data"), [("euler", 1, 2), ("midpoint", 2, 4), ("rk4", 7, 11)]
)
def test_a_step_takes_the_fewest_ops_of_its_two_forms(name, velocity, data):
    """Tensor ops per step: a velocity model adds each stage's output to x (one op per tableau
    term); a data model takes the tableau form or the raw-output form, whichever is shorter
    (RK4: 2 + 2 + 2 + 5 instead of 2 + 3 + 4 + 5 or the tensor form's 21)."""
    for kind, want in [("velocity", velocity), ("data", data)]:
        for program in _programs(name, kind):
            assert sum(sum_ops(t) for t in program.stages[1:]) + sum_ops(program.result) == want


def test_heun_last_step_is_euler():
    """Heun's program: two stages per step, one (Euler's) on the last, as its tensor form."""
    programs = _programs("heun", "data")
    assert [len(p.stages) for p in programs] == [2] * 7 + [1]
