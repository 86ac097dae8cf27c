"""The shared math of the exponential family: exact kernel integrals, Lagrange limits, end rules."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.solvers import exponential, host_program
from flowforge.solvers.exponential import Schedule, inverse_square_integrals, lagrange
from flowforge.targets import GaussianMixture

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


GM = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=[0.4, 0.6], weights=[0.4, 0.6])
FAMILY = [
    ("ipndm", {}),
    ("ipndm", {"variable": "rho"}),
    ("unipc", {}),
    ("deis", {}),
    ("deis", {"variable": "lambda"}),
    ("dpm_solver", {}),
    ("dpm_solver_pp", {"order": 3}),
    ("dpm_solver_pp_hb", {}),
]


def _solve(name: str, params: dict, path_name: str, kind: str) -> torch.Tensor:
    path = registry.create("path", path_name)
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(1), **F64)
    return flowforge.sample(
        GM.field(path, kind), x0 * path.sigma(torch.tensor(0.05, **F64)), path=path,
        prediction=kind, solver=registry.create("solver", name, **params), nfe=9,
        t_span=(0.05, 1.0),
    )  # fmt: skip


def _forced(form: str):
    """`host_program` restricted to one form (None where that form does not exist)."""

    def make(weights, x):
        rows = weights[..., 0].tolist()
        if form == "kept":
            return host_program.HostProgram(host_program.kept_program(rows))
        if form == "ring":
            return host_program.HostProgram(host_program.ring_program(rows, x))
        steps = host_program.output_program(rows)
        return None if steps is None else host_program.HostProgram(steps)

    return make


@pytest.mark.parametrize(("path_name", "kind"), [("cond_ot", "velocity"), ("vp_cosine", "noise")])
@pytest.mark.parametrize(("name", "params"), FAMILY)
@pytest.mark.parametrize("form", ["kept", "ring", "outputs"])
def test_cpu_program_computes_the_weighted_sums(name, params, path_name, kind, form, monkeypatch):
    """Each CPU program form (kept prediction forms, a ring of them, raw outputs; Python
    weights) equals the weight tensors, and so does the cheapest, which the solve uses."""
    monkeypatch.setattr(exponential, "host_program", lambda weights, x: None)
    tensors = _solve(name, params, path_name, kind)
    monkeypatch.setattr(exponential, "host_program", _forced(form))
    torch.testing.assert_close(
        _solve(name, params, path_name, kind), tensors, rtol=1e-11, atol=1e-11
    )
    monkeypatch.undo()
    torch.testing.assert_close(
        _solve(name, params, path_name, kind), tensors, rtol=1e-11, atol=1e-11
    )


def _program_weights(name: str, steps: int = 20, **params) -> torch.Tensor:
    path = registry.create("path", "cond_ot")
    grid = torch.linspace(0, 1, steps + 1, **F64)[:, None]
    return registry.create("solver", name, **params).weights(Schedule(path, "velocity", grid)).w


def test_order_four_reads_each_earlier_node_once():
    """iPNDM(4) on a velocity model, kept form: x_n, output_n, three kept forms and the new
    form's one multiply-add per step, instead of both vectors of every node (8), except next to
    the switch between the data and noise forms, whose nodes keep both."""
    weights = _program_weights("ipndm")
    program = host_program.kept_program(weights[..., 0].tolist())
    assert statistics.median(s.ops for s in program) == 6 and max(s.ops for s in program) <= 8
    assert min(len(row.nonzero()) for row in weights[3:, :, 0]) == 8


@pytest.mark.parametrize(("name", "order"), [("ipndm", 4), ("deis", 3), ("unipc", 3)])
def test_a_ring_step_costs_the_same_for_every_order(name, order):
    """In the ring form a step copies its state and output into the rows of the oldest node
    and takes the whole sum in one matrix product, whatever the order: cheaper than the kept
    form's order + 2 ops, and the cheapest program costs at most that."""
    weights = _program_weights(name, order=order)
    rows = weights[..., 0].tolist()
    ring = host_program.ring_program(rows, torch.zeros(1, **F64))
    assert all(s.weights.shape == (1, 2 * order) for s in ring)
    per_step = 2 * host_program.COPY_COST + host_program.MM_COST
    assert max(s.ops for s in ring) == per_step
    kept = host_program.kept_program(rows)
    assert per_step < sum(s.ops for s in kept) / len(kept)
    chosen = host_program.host_program(weights, torch.zeros(1, **F64))
    assert chosen.ops <= sum(s.ops for s in ring)


def test_singlestep_stages_read_raw_outputs_and_multistep_ones_cannot():
    """DPM-Solver-3's stages restart from their step's start, so each state is the previous one
    times a number plus a short sum of raw outputs: at most 4 terms and no kept vector to build.
    A multistep method's states carry every earlier output, so it has no such form."""
    rows = _program_weights("dpm_solver", steps=21)[..., 0].tolist()
    program = host_program.output_program(rows)
    assert program is not None and max(len(s.terms) for s in program) <= 4
    assert sum(s.ops for s in program) < sum(s.ops for s in host_program.kept_program(rows))
    multistep = _program_weights("dpm_solver_pp", steps=21)[..., 0].tolist()
    assert host_program.output_program(multistep) is None
