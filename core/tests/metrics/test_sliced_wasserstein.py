"""Sliced Wasserstein-2: exact 1-D transport, known values, and the sampling-noise baseline."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.data import Standardizer, TwoMoons
from flowforge.metrics import MetricContext, sliced_wasserstein, wasserstein_1d_squared
from flowforge.paths import CondOT


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_one_dimensional_transport_matches_sorting_for_equal_sizes():
    a, b = torch.randn(3, 50, dtype=torch.float64), torch.randn(3, 50, dtype=torch.float64)
    expected = ((a.sort(1).values - b.sort(1).values) ** 2).mean(1)
    torch.testing.assert_close(wasserstein_1d_squared(a, b), expected)


def test_one_dimensional_transport_handles_unequal_sizes_exactly():
    a = torch.randn(2, 30, dtype=torch.float64)
    b = torch.randn(2, 45, dtype=torch.float64)
    # repeating points does not change an empirical measure
    torch.testing.assert_close(
        wasserstein_1d_squared(a, b), wasserstein_1d_squared(a.repeat(1, 3), b.repeat(1, 2))
    )
    # a point mass at c against uniform points: W2^2 = mean (x - c)^2
    c = torch.full((2, 1), 0.5, dtype=torch.float64)
    torch.testing.assert_close(
        wasserstein_1d_squared(c, b)[:, None], ((b - 0.5) ** 2).mean(1, keepdim=True)
    )


def test_identical_sets_are_at_distance_zero():
    x = torch.randn(500, 2, generator=_gen())
    assert sliced_wasserstein(x, x, 100, _gen()).item() == pytest.approx(0.0, abs=1e-12)
    assert sliced_wasserstein(x, x[torch.randperm(500)], 100, _gen()).item() < 1e-12


@pytest.mark.parametrize("dim", [2, 5])
def test_a_shift_by_c_gives_c_over_sqrt_dim(dim):
    x = torch.randn(1000, dim, generator=_gen())
    shift = torch.zeros(dim)
    shift[0] = 2.0
    sw = sliced_wasserstein(x, x + shift, 4000, _gen(1)).item()
    assert sw == pytest.approx(2.0 / math.sqrt(dim), rel=0.05)
    near = sliced_wasserstein(x, x + 0.1 * shift, 4000, _gen(1)).item()
    assert near < sw


def _context(samples, dataset, test):
    return MetricContext(
        samples=samples,
        test=test,
        dataset=dataset,
        field=lambda x, t: x,
        path=CondOT(),
        prediction="velocity",
        standardizer=Standardizer.fit(test),
        generator=_gen(3),
        device=torch.device("cpu"),
    )


def test_metric_reports_distance_baseline_and_ratio():
    moons = TwoMoons(n_train=10, n_val=0, n_test=1000)
    test = moons.splits()["test"]
    metric = registry.create("metric", "sliced_wasserstein", n_projections=200)
    good = metric.compute(_context(moons.draw(1000, _gen(9)), moons, test))
    bad = metric.compute(_context(moons.draw(1000, _gen(9)) + 0.5, moons, test))
    assert set(good) == {
        "sliced_wasserstein",
        "sliced_wasserstein_baseline",
        "sliced_wasserstein_ratio",
    }
    assert 0.5 < good["sliced_wasserstein_ratio"] < 2.0
    assert bad["sliced_wasserstein_ratio"] > 5.0
    assert good["sliced_wasserstein_baseline"] == bad["sliced_wasserstein_baseline"]


def test_metric_without_a_generator_reports_no_baseline():
    class Fixed(TwoMoons):
        generative = False

    moons = Fixed(n_train=10, n_val=0, n_test=200)
    test = moons.splits()["test"]
    out = registry.create("metric", "sliced_wasserstein").compute(_context(test, moons, test))
    assert out == {"sliced_wasserstein": pytest.approx(0.0, abs=1e-12)}
