"""The i.i.d. noise mode (`noise="iid"`): each step's noise is a fresh seeded standard normal,
reproducible and the same in any batch; eta = 0 is still the ODE."""

from __future__ import annotations

import math

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import SpecError
from flowforge.noise import SeededNormals, seed_from
from flowforge.solvers import predictor_corrector, reverse_sde
from flowforge.solvers.ddim import DDIM
from flowforge.solvers.reverse_sde import ReverseSDE, noise_state

from .ddpm_reference import ddpm_chain

F64 = torch.float64


def test_steps_draw_unit_normals_independent_of_each_other_and_of_langevin_draws():
    n = 100_000
    x = torch.zeros(n, 2, dtype=F64)
    grid = torch.linspace(0, 1, 5, dtype=F64)[:, None].expand(5, n)
    state = noise_state("iid", x, grid, torch.Generator().manual_seed(0), depth=20)
    steps = [state.draw(k, grid[k + 1])[0] for k in range(3)]
    se = 1 / math.sqrt(2 * n)
    for z in steps:
        assert abs(float(z.mean())) < 4 * se and abs(float(z.var()) - 1) < 4 * math.sqrt(2) * se
    pairs = [(steps[0], steps[1]), (steps[1], steps[2]), (steps[1], state.normals(1, 0))]
    for a, b in pairs:
        assert abs(float((a * b).mean())) < 4 / math.sqrt(2 * n)
    assert torch.equal(state.draw(1, grid[2])[0], steps[1]), "a step's noise is a pure function"


@pytest.mark.parametrize("block", [None, 24])
def test_reverse_sde_with_iid_noise_is_ddpm_with_one_normal_per_step(block, mixture, monkeypatch):
    """On vp_linear with eta = 1, step n adds the DDPM posterior's std times normal number n,
    whether the steps' normals are made all at once or two at a time (blocks of 24 elements)."""
    if block is not None:
        monkeypatch.setattr(reverse_sde, "IID_BLOCK_ELEMENTS", block)
    path = registry.create("path", "vp_linear")
    x = torch.randn(6, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(0.0, 0.999, 6, dtype=F64)
    out = flowforge.sample(
        mixture.field(path), x, path=path, prediction="velocity",
        solver=ReverseSDE(eta=1.0, noise="iid"), nfe=5, time_grid=grid,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    normals = SeededNormals(seed_from(torch.Generator().manual_seed(3), "cpu"), (6, 2), F64)
    x = ddpm_chain(mixture, path, x, grid, normals.normals)
    torch.testing.assert_close(out, x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["reverse_sde", "dpm_solver_pp_sde", "euler_maruyama"])
def test_an_iid_sample_is_reproducible_and_the_same_in_any_batch(name, mixture):
    path = registry.create("path", "cond_ot")
    solver = registry.create("solver", name, noise="iid")
    x = torch.randn(6, 2, dtype=F64, generator=torch.Generator().manual_seed(0))

    def solve(rows: slice) -> torch.Tensor:
        return flowforge.sample(
            mixture.field(path), x[rows], path=path, prediction="velocity", solver=solver,
            nfe=12, generator=torch.Generator().manual_seed(5),
        )  # fmt: skip

    full = solve(slice(None))
    assert torch.equal(full[:2], solve(slice(0, 2))) and torch.equal(full, solve(slice(None)))
    tree = registry.create("solver", name)
    other = flowforge.sample(
        mixture.field(path), x, path=path, prediction="velocity", solver=tree, nfe=12,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    assert (other - full).abs().max() > 1e-3, "iid noise is not the tree's increments"


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("name", ["reverse_sde", "euler_maruyama", "predictor_corrector"])
def test_an_iid_sample_has_the_same_bits_for_any_block_size(name, dtype, mixture, monkeypatch):
    """The scaled normals made a block of steps at a time in a reused workspace (blocks of 24
    elements: two steps, the last block shorter) are those made all at once, bit for bit."""
    path = registry.create("path", "vp_cosine")
    x = torch.randn(6, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    kw = dict(path=path, prediction="velocity", nfe=10, t_span=(0.05, 0.95))
    solver = registry.create("solver", name, noise="iid")

    def solve() -> torch.Tensor:
        return flowforge.sample(
            mixture.field(path), x, solver=solver, generator=torch.Generator().manual_seed(4), **kw
        )

    whole = solve()
    for module in (reverse_sde, predictor_corrector):
        monkeypatch.setattr(module, "IID_BLOCK_ELEMENTS", 24)
    assert torch.equal(solve(), whole)


def test_a_state_whose_block_was_overwritten_makes_it_again(monkeypatch):
    """The blocks of a solve share one workspace, so a later block overwrites an earlier one:
    drawing from the earlier state again gives its own step's numbers, not the later block's."""
    monkeypatch.setattr(reverse_sde, "IID_BLOCK_ELEMENTS", 24)  # x (6, 2): two steps a block
    x = torch.zeros(6, 2, dtype=F64)
    grid = torch.linspace(0, 1, 7, dtype=F64)[:, None].expand(7, 6)
    fresh = noise_state("iid", x, grid, torch.Generator().manual_seed(0), depth=20)
    first, early = fresh.draw(0, grid[1])
    expected = first.clone()
    late = early.draw(2, grid[3])[1]
    assert late.work is early.work and late.start == 2
    assert torch.equal(early.draw(0, grid[1])[0], expected)
    assert torch.equal(late.draw(3, grid[4])[0], fresh.draw(3, grid[4])[0])


def test_iid_at_eta_zero_is_the_ode():
    path = registry.create("path", "vp_cosine")
    x = torch.randn(8, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    field = lambda x_t, t: -x_t
    kw = dict(path=path, prediction="velocity", nfe=10, time_grid="uniform")
    sde = flowforge.sample(field, x, solver=ReverseSDE(eta=0.0, noise="iid"), **kw)
    assert torch.equal(sde, flowforge.sample(field, x, solver=DDIM(), **kw))


def test_an_unknown_noise_kind_names_the_field_and_the_choices():
    with pytest.raises(SpecError, match=r"noise.*'brownian_tree' or 'iid'"):
        registry.create("solver", "reverse_sde", noise="gaussian")
