"""Loss weightings: one objective for every prediction kind, the papers' weights, finite limits."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.paths import PREDICTIONS, CondOT
from flowforge.spec.models import LossSpec
from flowforge.targets import GaussianMixture
from flowforge.training import (
    WEIGHTINGS,
    data_error_scale,
    loss_weight,
    per_sample_loss,
    pseudo_huber,
    regression_loss,
    regression_target,
)

F64 = torch.float64
GM = GaussianMixture(means=[[-1.5, 0.0], [1.0, 1.0]], stds=[0.3, 0.5], weights=[0.4, 0.6])
PATHS = ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"]
WEIGHTED = [w for w in WEIGHTINGS if w != "uniform"]


def _batch(path, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_1 = GM.sample(n, generator=gen, dtype=F64)
    x_0 = torch.randn(n, 2, generator=gen, dtype=F64)
    t = 0.05 + 0.9 * torch.rand(n, generator=gen, dtype=F64)
    return x_0, x_1, t


def _rough_model(path, kind):
    """The exact prediction of `kind` plus a smooth error: a stand-in for a trained network."""
    exact = GM.field(path, "data")
    data_model = lambda x, t: exact(x, t) + 0.3 * torch.sin(2 * x) + 0.1 * t[:, None]
    return lambda x, t: path.convert(data_model(x, t), "data", kind, x, t)


@pytest.mark.parametrize("weighting", WEIGHTED)
@pytest.mark.parametrize("path_name", PATHS)
def test_weighted_losses_are_one_objective_for_every_kind(path_name, weighting):
    """A model converted between kinds has the same weighted loss, sample by sample."""
    path, loss = registry.create("path", path_name), LossSpec(weighting=weighting)
    x_0, x_1, t = _batch(path, 256)
    losses = [
        per_sample_loss(_rough_model(path, k), path, k, x_0, x_1, t, loss) for k in PREDICTIONS
    ]
    for other in losses[1:]:
        torch.testing.assert_close(other, losses[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path_name", PATHS)
def test_unweighted_losses_relate_by_the_conversion_factor(path_name):
    """With uniform weighting each kind's error is the data error divided by `d x_1 / d pred`:
    the per-sample losses of one model relate by the squared conversion factor."""
    path = registry.create("path", path_name)
    x_0, x_1, t = _batch(path, 256)
    data = per_sample_loss(_rough_model(path, "data"), path, "data", x_0, x_1, t)
    for kind in PREDICTIONS:
        own = per_sample_loss(_rough_model(path, kind), path, kind, x_0, x_1, t)
        torch.testing.assert_close(
            own * data_error_scale(path, kind, t) ** 2, data, rtol=1e-9, atol=0
        )


def test_weights_are_the_papers():
    """Min-SNR (Hang et al. 2023, their Eq. for eps / x0 targets), EDM's lambda(sigma), SNR."""
    path = registry.create("path", "vp_cosine")
    t = torch.linspace(0.02, 0.98, 49, dtype=F64)
    snr = (path.alpha(t) / path.sigma(t)) ** 2
    gamma = 5.0
    min_snr = LossSpec(weighting="min_snr", gamma=gamma)
    torch.testing.assert_close(loss_weight(path, "noise", t, min_snr), snr.clamp_max(gamma) / snr)
    torch.testing.assert_close(loss_weight(path, "data", t, min_snr), snr.clamp_max(gamma))
    torch.testing.assert_close(
        loss_weight(path, "noise", t, LossSpec(weighting="snr")), torch.ones_like(t)
    )
    edm_path, sigma_data = registry.create("path", "edm"), 0.5
    sigma = edm_path.sigma(t)
    edm = LossSpec(weighting="edm", sigma_data=sigma_data)
    expected = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    torch.testing.assert_close(loss_weight(edm_path, "data", t, edm), expected)
    assert loss_weight(path, "velocity", t, LossSpec()) is None


@pytest.mark.parametrize("weighting", WEIGHTED)
def test_weights_take_their_limits_at_the_ends_of_cond_ot(weighting):
    """At t = 0 (alpha = 0) and t = 1 (sigma = 0) the weights of a velocity model are finite and
    equal their limits; no 0 * inf = NaN anywhere."""
    path, loss = CondOT(), LossSpec(weighting=weighting, gamma=5.0, sigma_data=0.5)
    ends = torch.tensor([0.0, 1.0], dtype=F64)
    near = torch.tensor([1e-7, 1 - 1e-7], dtype=F64)
    for kind in PREDICTIONS:
        w = loss_weight(path, kind, ends, loss)
        assert not torch.isnan(w).any(), kind
    torch.testing.assert_close(
        loss_weight(path, "velocity", ends, loss),
        loss_weight(path, "velocity", near, loss),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("weighting", WEIGHTED)
@pytest.mark.parametrize("kind", PREDICTIONS)
def test_exact_prediction_minimises_every_weighted_loss(kind, weighting):
    """The exact prediction is E[target | x_t], so the weighted loss's slope along any
    perturbation h, 2 E[w (exact - target) . h], is zero up to Monte Carlo error (the uniform
    case is in test_losses.py)."""
    path, loss = registry.create("path", "vp_cosine"), LossSpec(weighting=weighting)
    x_0, x_1, t = _batch(path, 200_000, seed=1)
    s = path.sample(x_0, x_1, t)
    target = regression_target(s, path, kind)
    exact = GM.predict(s.x_t, s.t, path, kind)
    w = loss_weight(path, kind, t, loss)
    h = torch.sin(s.x_t) + s.t[:, None]
    g = w * ((exact - target) * h).sum(1)
    assert abs((g.mean() / (g.std() / len(g) ** 0.5)).item()) < 4
    model = lambda x, tt: GM.predict(x, tt, path, kind)
    worse = lambda x, tt: model(x, tt) + 0.2 * target.std() * torch.sin(x)
    args = (path, kind, x_0, x_1, t, loss)
    assert regression_loss(model, *args) < regression_loss(worse, *args)


def test_pseudo_huber_is_quadratic_near_zero_and_linear_far():
    c = 0.01
    small, large = torch.tensor([1e-8], dtype=F64), torch.tensor([1e4], dtype=F64)
    assert float(pseudo_huber(torch.zeros(1, dtype=F64), c)) == 0.0
    assert float(pseudo_huber(small, c)) == pytest.approx(1e-8 / (2 * c), rel=1e-4)
    assert float(pseudo_huber(large, c)) == pytest.approx(math.sqrt(1e4) - c, rel=1e-6)


def test_huber_and_pair_weights_enter_the_batch_loss():
    path = CondOT()
    x_0, x_1, t = _batch(path, 64)
    model = _rough_model(path, "velocity")
    mse = per_sample_loss(model, path, "velocity", x_0, x_1, t)
    huber = LossSpec(huber_c=0.05)
    torch.testing.assert_close(
        per_sample_loss(model, path, "velocity", x_0, x_1, t, huber), pseudo_huber(mse, 0.05)
    )
    w = torch.linspace(0.5, 1.5, 64, dtype=F64)
    torch.testing.assert_close(
        regression_loss(model, path, "velocity", x_0, x_1, t, pair_weight=w), (w * mse).mean()
    )
