"""The shared math of the exponential family: exact kernel integrals, Lagrange limits, end rules."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.solvers.exponential import Schedule, inverse_square_integrals, lagrange

F64 = dict(dtype=torch.float64)


def test_inverse_square_integrals_match_quadrature():
    nodes = torch.tensor([[0.3], [0.5], [0.2]], **F64)
    a, b = torch.tensor([0.35], **F64), torch.tensor([0.9], **F64)
    got = inverse_square_integrals(nodes, a, b)
    u = torch.linspace(float(a), float(b), 200001, **F64)
    basis = lagrange(u, nodes.expand(3, u.shape[0]))
    want = torch.trapezoid(basis / u**2, u, dim=1)
    torch.testing.assert_close(got[:, 0], want, rtol=1e-8, atol=1e-10)
    # The basis sums to one, so the weights sum to int u^-2 = 1/a - 1/b.
    torch.testing.assert_close(got.sum(0), 1 / a - 1 / b)


def test_lagrange_drops_a_node_at_infinity():
    nodes = torch.tensor([[1.0], [2.0], [math.inf]], **F64)
    at = lagrange(torch.tensor([0.0], **F64), nodes)[:, 0]
    torch.testing.assert_close(at, torch.tensor([2.0, -1.0, 0.0], **F64))


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
def test_schedule_flags_infinite_log_snr_ends(path_name):
    path = registry.create("path", path_name)
    grid = torch.tensor([[0.0, 0.1], [0.5, 0.5], [1.0, 0.9]], **F64)
    s = Schedule(path, "velocity", grid)
    assert s.noise_start.tolist() == [True, False]
    assert s.data_end.tolist() == [True, False]
    assert torch.equal(s.decay[0, 0], torch.tensor(0.0, **F64))  # e^-h exactly 0, no inf * 0
    assert bool(torch.isfinite(s.nu).all())
