"""Members of the exponential family that must coincide, on the same grid and model."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.4, 0.6], weights=[0.4, 0.6])
FIRST_ORDER = [
    ("ddim", {}),
    ("dpm_solver", {"order": 1}),
    ("dpm_solver_pp", {"order": 1}),
    ("unipc", {"order": 1, "corrector": False}),
    ("deis", {"order": 1}),
    ("ipndm", {"order": 1}),
]


def solve(name: str, params: dict, path_name: str, nfe: int, grid: str = "logsnr"):
    path = registry.create("path", path_name)
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x0 = x0 * path.sigma(torch.tensor(path.t_span[0], dtype=torch.float64))
    return flowforge.sample(
        GM.field(path), x0, path=path, prediction="velocity",
        solver=registry.create("solver", name, **params), nfe=nfe, time_grid=grid,
    )  # fmt: skip


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "edm"])
@pytest.mark.parametrize(("name", "params"), FIRST_ORDER[1:])
def test_first_order_members_are_ddim(name, params, path_name):
    ddim = solve("ddim", {}, path_name, 7)
    torch.testing.assert_close(solve(name, params, path_name, 7), ddim, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("momentum", ["dpm_solver_pp_hb", "dpm_solver_pp_ghb"])
def test_momentum_with_beta_one_is_dpm_solver_pp_2m(momentum):
    plain = solve("dpm_solver_pp", {"order": 2}, "vp_cosine", 9)
    out = solve(momentum, {"beta": 1.0}, "vp_cosine", 9)
    torch.testing.assert_close(out, plain, rtol=1e-10, atol=1e-10)


def test_momentum_changes_the_answer_for_beta_below_one():
    plain = solve("dpm_solver_pp", {"order": 2}, "vp_cosine", 9)
    for momentum in ("dpm_solver_pp_hb", "dpm_solver_pp_ghb"):
        assert float((solve(momentum, {"beta": 0.6}, "vp_cosine", 9) - plain).abs().max()) > 1e-4


def test_unipc_corrector_changes_the_answer_at_no_extra_cost():
    plain = solve("unipc", {"order": 2, "corrector": False}, "cond_ot", 8)
    corrected = solve("unipc", {"order": 3}, "cond_ot", 8)
    assert float((plain - corrected).abs().max()) > 1e-4


def test_bh1_and_bh2_differ_only_in_low_order_coefficients():
    bh1 = solve("unipc", {"order": 3, "variant": "bh1"}, "cond_ot", 8)
    bh2 = solve("unipc", {"order": 3, "variant": "bh2"}, "cond_ot", 8)
    assert float((bh1 - bh2).abs().max()) > 1e-6
