"""Couplings: the contract for every registered one, exactness of OT, Sinkhorn's plan, labels."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.graph.host_sync import forbid_host_sync
from flowforge.testing import CouplingContract, registered
from flowforge.testing.contracts.coupling import source_rows
from flowforge.training.couplings import (
    ClassConditionalOT,
    ExactOT,
    Independent,
    Sinkhorn,
    WeightedCFM,
    assignment,
    partners,
    sinkhorn_log_plan,
    squared_distances,
)

F64 = torch.float64


@pytest.mark.parametrize("component_name", registered("coupling"))
class TestRegisteredCouplings(CouplingContract):
    """Core's and installed plugins' couplings."""


def _points(n: int, dim: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x_0 = torch.randn(n, dim, generator=gen, dtype=F64)
    x_1 = torch.randn(n, dim, generator=gen, dtype=F64) * 0.5 + torch.tensor(
        [2.0] + [0.0] * (dim - 1), dtype=F64
    )
    return x_0, x_1


def _cost(x_0: torch.Tensor, x_1: torch.Tensor) -> float:
    return float(((x_1 - x_0) ** 2).sum())


def test_squared_distances_match_the_definition():
    x_0, x_1 = _points(9, dim=5)
    cost = squared_distances(x_1.reshape(9, 5, 1), x_0.reshape(9, 5, 1))
    expected = ((x_1[:, None, :] - x_0[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(cost, expected)


@pytest.mark.parametrize("n", [2, 5, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ot_equals_brute_force_on_tiny_batches(n, seed):
    x_0, x_1 = _points(n, seed=seed)
    out = ExactOT().pair(x_0, x_1, generator=torch.Generator())
    best = min(_cost(x_0[list(p)], x_1) for p in itertools.permutations(range(n)))
    assert _cost(out.x_0, x_1) == pytest.approx(best, rel=1e-12)
    assert sorted(source_rows(out.x_0, x_0).tolist()) == list(range(n))  # a permutation


@pytest.mark.parametrize("n", [64, 512])
def test_exact_ot_is_a_permutation_no_costlier_than_independent(n):
    x_0, x_1 = _points(n, dim=8)
    out = ExactOT().pair(x_0, x_1, generator=torch.Generator())
    assert sorted(source_rows(out.x_0, x_0).tolist()) == list(range(n))
    assert _cost(out.x_0, x_1) <= _cost(x_0, x_1)
    # Swapping the partners of any two data points costs more (2-cyclical monotonicity).
    c = squared_distances(x_1, out.x_0)
    change = c + c.T - c.diagonal()[:, None] - c.diagonal()[None, :]
    assert float(change.min()) >= -1e-9


def test_exact_ot_refuses_batches_over_its_limit():
    x_0, x_1 = _points(20)
    with pytest.raises(
        InvalidArgumentError, match=r"max_batch=16.*train.batch_size is 20.*sinkhorn"
    ):
        ExactOT(max_batch=16).pair(x_0, x_1, generator=torch.Generator())


def test_sinkhorn_plan_has_the_uniform_marginals():
    x_0, x_1 = _points(40)
    log_plan = sinkhorn_log_plan(squared_distances(x_1, x_0), eps=0.05, iters=500)
    plan = log_plan.exp()
    torch.testing.assert_close(plan.sum(0), torch.full((40,), 1 / 40, dtype=F64))
    torch.testing.assert_close(plan.sum(1), torch.full((40,), 1 / 40, dtype=F64), atol=1e-8, rtol=0)


def test_sinkhorn_cost_approaches_exact_ot_as_eps_shrinks():
    """<P, C> decreases to the OT cost as eps -> 0 and to the independent cost as eps grows."""
    x_0, x_1 = _points(32)
    cost = squared_distances(x_1, x_0)
    ot = _cost(x_0[assignment(cost)], x_1) / 32
    independent = float(cost.mean())
    gaps = []
    for eps in (10.0, 0.3, 0.1, 0.03, 0.01, 0.003):
        plan = sinkhorn_log_plan(cost, eps=eps, iters=5000, tol=1e-9).exp()
        gaps.append(float((plan * cost).sum()) - ot)
    assert all(g >= -1e-9 for g in gaps)
    assert all(b < a for a, b in itertools.pairwise(gaps))
    assert gaps[0] > 0.9 * (independent - ot)
    assert gaps[-1] < 0.01 * (independent - ot)


def test_sinkhorn_is_batched_and_stops_early_at_tolerance(monkeypatch):
    x_0, x_1 = _points(16)
    y_0, y_1 = _points(16, seed=5)
    costs = torch.stack([squared_distances(x_1, x_0), squared_distances(y_1, y_0)])
    batched = sinkhorn_log_plan(costs, eps=0.1, iters=300)
    for i in range(2):
        torch.testing.assert_close(batched[i], sinkhorn_log_plan(costs[i], eps=0.1, iters=300))
    logsumexp, calls = torch.logsumexp, []
    monkeypatch.setattr(
        torch, "logsumexp", lambda *a, **k: (calls.append(1), logsumexp(*a, **k))[1]
    )
    plan = sinkhorn_log_plan(costs[0], eps=0.5, iters=10_000, tol=1e-6, check_every=5).exp()
    assert len(calls) < 1000, "the tolerance should stop a well-conditioned solve early"
    assert float((plan.sum(1) - 1 / 16).abs().sum()) < 1e-6


def test_sinkhorn_pairs_approach_exact_ot_at_small_eps():
    """At small eps the pairs cost what the OT permutation costs, and mostly are it: the plan
    may split mass between near-tied partners, and a noise point may serve two data points,
    so a pairing can even cost slightly less than the permutation."""
    x_0, x_1 = _points(24)
    exact = ExactOT().pair(x_0, x_1, generator=torch.Generator()).x_0
    for pairing in ("argmax", "sample"):
        sharp = Sinkhorn(eps=0.002, iters=3000, pairing=pairing)
        out = sharp.pair(x_0, x_1, generator=torch.Generator().manual_seed(0)).x_0
        assert _cost(out, x_1) == pytest.approx(_cost(exact, x_1), rel=0.02)
        assert (out == exact).all(1).sum() >= 16  # two thirds of the rows
    assert _cost(exact, x_1) < 0.8 * _cost(x_0, x_1)


def test_sampled_partners_follow_the_plans_conditionals():
    """Over many draws, row j's partner is column i with frequency P(i | j) = n P[j, i]."""
    x_0, x_1 = _points(6)
    log_plan = sinkhorn_log_plan(squared_distances(x_1, x_0), eps=0.5, iters=500)
    draws = 20_000
    found = partners(log_plan.expand(draws, 6, 6), "sample", torch.Generator().manual_seed(0))
    freq = torch.nn.functional.one_hot(found, 6).to(F64).mean(0)
    # The binomial standard error of a frequency from 20000 draws is at most 0.0036: allow 5.
    assert float((freq - 6 * log_plan.exp()).abs().max()) < 0.018
    assert torch.equal(partners(log_plan, "argmax", torch.Generator()), log_plan.argmax(1))


def test_class_conditional_pairs_never_cross_labels_and_are_optimal_within_each():
    x_0, x_1 = _points(60, seed=3)
    labels = torch.randint(0, 4, (60,), generator=torch.Generator().manual_seed(1))
    out = ClassConditionalOT().pair(x_0, x_1, generator=torch.Generator(), labels=labels)
    rows = source_rows(out.x_0, x_0)
    assert torch.equal(labels[rows], labels) and sorted(rows.tolist()) == list(range(60))
    for c in range(4):
        idx = torch.nonzero(labels == c).squeeze(1)
        best = ExactOT().pair(x_0[idx], x_1[idx], generator=torch.Generator()).x_0
        assert _cost(out.x_0[idx], x_1[idx]) == pytest.approx(_cost(best, x_1[idx]), rel=1e-12)
    assert _cost(out.x_0, x_1) >= _cost(
        ExactOT().pair(x_0, x_1, generator=torch.Generator()).x_0, x_1
    )


def test_wcfm_weights_are_the_normalised_gibbs_kernel():
    x_0, x_1 = _points(50)
    out = WeightedCFM(eps=0.3).pair(x_0, x_1, generator=torch.Generator())
    c = ((x_1 - x_0) ** 2).sum(1)
    kernel = torch.exp(-c / (0.3 * c.mean()))
    torch.testing.assert_close(out.weight, kernel / kernel.mean())
    assert out.x_0 is x_0 and out.x_1 is x_1


def test_coupling_costs_order_ot_sinkhorn_wcfm_independent():
    """On the coupling itself: the (weighted) mean pair cost, averaged over many batches, is
    lowest for exact OT, then Sinkhorn, then W-CFM, then independent pairs."""
    gen = torch.Generator().manual_seed(0)
    couplings = {
        "exact_ot": ExactOT(),
        "sinkhorn": Sinkhorn(eps=0.05),
        "wcfm": WeightedCFM(eps=0.5),
        "independent": Independent(),
    }
    totals = dict.fromkeys(couplings, 0.0)
    for seed in range(20):
        x_0, x_1 = _points(128, dim=16, seed=seed)
        for name, coupling in couplings.items():
            out = coupling.pair(x_0, x_1, generator=gen)
            w = torch.ones(128, dtype=F64) if out.weight is None else out.weight
            totals[name] += float((w * ((out.x_1 - out.x_0) ** 2).sum(1)).mean())
    order = sorted(totals, key=totals.get)
    assert order == ["exact_ot", "sinkhorn", "wcfm", "independent"], totals


def test_spec_names_and_params_reach_the_coupling():
    assert registry.create("coupling", "sinkhorn", eps=0.1) == Sinkhorn(eps=0.1)
    assert registry.get("coupling", "class_conditional").factory.needs_labels
    assert math.isclose(registry.create("coupling", "wcfm").eps, 0.5)


@pytest.mark.parametrize(
    "coupling",
    [Independent(), Sinkhorn(eps=0.1, iters=20), Sinkhorn(pairing="argmax"), WeightedCFM()],
    ids=["independent", "sinkhorn", "sinkhorn-argmax", "wcfm"],
)
def test_device_couplings_never_synchronise_with_the_host(coupling):
    """No value is read on the host (the guard sees what would stall a GPU), so a step with
    these couplings keeps the device queue full; exact_ot solves on the CPU by design."""
    x_0, x_1 = (x.float() for x in _points(64, dim=3))
    gen = torch.Generator().manual_seed(0)
    with forbid_host_sync():
        coupling.pair(x_0, x_1, generator=gen)


def test_sinkhorn_tolerance_checks_are_its_only_host_reads():
    cost = squared_distances(*reversed(_points(16)))
    with forbid_host_sync():
        sinkhorn_log_plan(cost, eps=0.1, iters=50)
    with pytest.raises(InvalidArgumentError, match="host synchronisation"), forbid_host_sync():
        sinkhorn_log_plan(cost, eps=0.1, iters=50, tol=1e-6)
