"""Exact likelihood through the probability-flow ODE, checked against Gaussian mixtures."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.likelihood import divergence, log_likelihood, prior_log_prob, prior_sample
from flowforge.paths import PREDICTIONS
from flowforge.targets import GaussianMixture

GM = GaussianMixture(
    means=[[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], stds=[0.5, 0.3, 0.7], weights=[0.3, 0.5, 0.2]
)


def _points(n=200, seed=0):
    return GM.sample(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
def test_log_likelihood_of_the_exact_field_is_the_exact_density(path_name):
    path = registry.create("path", path_name)
    x = _points()
    logp = log_likelihood(
        GM.field(path), x, path=path, prediction="velocity", solver="rk4", nfe=160
    )
    assert (logp - GM.log_prob(x)).abs().mean().item() < 1e-4
    assert (logp - GM.log_prob(x)).abs().max().item() < 1e-3


def test_error_falls_at_the_solver_order():
    path = registry.create("path", "cond_ot")
    x = _points(50)
    err = [
        (
            log_likelihood(GM.field(path), x, path="cond_ot", prediction="velocity", nfe=n)
            - GM.log_prob(x)
        )
        .abs()
        .mean()
        .item()
        for n in (40, 80)
    ]
    assert err[1] < err[0] / 8  # RK4: 16x in theory


@pytest.mark.parametrize("kind", PREDICTIONS)
def test_every_prediction_kind_gives_the_marginal_density(kind):
    """t_span stays off both ends, where noise/score (t=0) and data (t=1) have no velocity."""
    path = registry.create("path", "vp_cosine")
    t0, t1 = 1e-4, 0.98
    x = _points(100, seed=1)
    t = torch.full((100,), t1, dtype=x.dtype)
    noise = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    x_t1 = path.sample(noise, x, t).x_t
    logp = log_likelihood(
        GM.field(path, kind), x_t1, path=path, prediction=kind, nfe=200, t_span=(t0, t1)
    )
    # the source N(0, sigma(t0)^2 I) ignores alpha(t0) x_1, an error of order alpha(t0) ~ 1.6e-4
    assert (logp - GM.marginal_log_prob(x_t1, t, path)).abs().mean().item() < 2e-4


def test_the_source_approximation_is_unbiased_for_small_alpha():
    """vp_linear starts at alpha(0) = 6.6e-3: per-point errors O(alpha), mean error O(alpha^2)."""
    path = registry.create("path", "vp_linear")
    x = _points(400, seed=3)
    t = torch.full((400,), 0.98, dtype=x.dtype)
    x_t = path.sample(torch.zeros_like(x), x, t).x_t
    logp = log_likelihood(
        GM.field(path), x_t, path=path, prediction="velocity", nfe=200, t_span=(0.0, 0.98)
    )
    err = logp - GM.marginal_log_prob(x_t, t, path)
    assert err.abs().mean().item() < 1e-2 and abs(err.mean().item()) < 2e-4


def test_structured_states_keep_their_shape():
    """A (B, 2, 3) state is six independent 1-D Gaussians here: log p sums over them."""
    gm = GaussianMixture(means=[[0.5]], stds=0.7)
    path = registry.create("path", "cond_ot")
    x = torch.randn(4, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen = []

    def field(x_t, t):
        seen.append(x_t.shape)
        return gm.predict(x_t.reshape(-1, 1), t.repeat_interleave(6), path, "velocity").reshape(
            x_t.shape
        )

    logp = log_likelihood(field, x, path=path, prediction="velocity", nfe=80)
    assert set(seen) == {(4, 2, 3)}
    expected = gm.log_prob(x.reshape(-1, 1)).reshape(4, 6).sum(1)
    assert (logp - expected).abs().max().item() < 1e-4


def test_divergence_is_the_jacobian_trace():
    a = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    v = x @ a.T + x**2
    expected = torch.trace(a) + 2 * x.sum(1)
    torch.testing.assert_close(divergence(v, x), expected.detach())


def test_prior_matches_its_sampler():
    path = registry.create("path", "ve", sigma_max=5.0)
    x = prior_sample(path, (20000, 2), 0.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.std().item() == pytest.approx(5.0, rel=0.02)
    normal = torch.distributions.Normal(0.0, 5.0)
    torch.testing.assert_close(prior_log_prob(path, x[:5], 0.0), normal.log_prob(x[:5]).sum(1))
