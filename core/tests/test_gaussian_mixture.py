"""Gaussian-mixture targets are exact: checked by autograd, quadrature, the continuity equation."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.targets import GaussianMixture

PATHS = ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"]


@pytest.fixture(scope="module")
def gm2() -> GaussianMixture:
    return GaussianMixture(
        means=[[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]],
        stds=[[0.5, 0.3], [0.4, 0.6], [0.8, 0.8]],
        weights=[0.2, 0.5, 0.3],
    )


def _points(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = 1.5 * torch.randn(n, 2, dtype=torch.float64, generator=gen)
    t = 0.05 + 0.9 * torch.rand(n, dtype=torch.float64, generator=gen)
    return x, t


@pytest.mark.parametrize("path_name", PATHS)
def test_score_is_gradient_of_marginal_log_density(gm2, path_name):
    path = registry.create("path", path_name)
    x, t = _points()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(gm2.marginal_log_prob(x, t, path).sum(), x)
    torch.testing.assert_close(
        gm2.predict(x.detach(), t, path, "score"), grad, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "vp_linear"])
def test_velocity_satisfies_continuity_equation(gm2, path_name):
    """d/dt log p_t(x) = -div v - v . grad log p_t at fixed x (finite difference in t)."""
    path = registry.create("path", path_name)
    x, t = _points(16, seed=3)
    h = 1e-5
    dlogp = (gm2.marginal_log_prob(x, t + h, path) - gm2.marginal_log_prob(x, t - h, path)) / (
        2 * h
    )
    xg = x.clone().requires_grad_(True)
    v = gm2.predict(xg, t, path, "velocity")
    div = sum(torch.autograd.grad(v[:, i].sum(), xg, retain_graph=True)[0][:, i] for i in range(2))
    rhs = -div - (v * gm2.predict(x, t, path, "score")).sum(-1)
    torch.testing.assert_close(dlogp, rhs.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path_name", PATHS)
def test_data_prediction_matches_quadrature_posterior_mean(path_name):
    """E[x_1 | x_t] by brute-force quadrature over x_1 for a 1-D mixture."""
    gm = GaussianMixture(means=[[-1.0], [2.0]], stds=[0.4, 0.7], weights=[0.6, 0.4])
    path = registry.create("path", path_name)
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    x_t = torch.tensor([[0.3], [-0.5], [1.7]], dtype=torch.float64)
    grid = torch.linspace(-8, 10, 200001, dtype=torch.float64)
    prior = gm.log_prob(grid[:, None])
    a, s = path.alpha(t), path.sigma(t)
    loglik = -0.5 * ((x_t - a[:, None] * grid[None]) / s[:, None]) ** 2
    w = torch.softmax(prior[None] + loglik, dim=1)
    expected = (w * grid[None]).sum(1, keepdim=True)
    torch.testing.assert_close(gm.predict(x_t, t, path, "data"), expected, rtol=1e-7, atol=1e-7)


def test_log_prob_normalised_and_samples_have_the_mixture_moments(gm2):
    g = torch.linspace(-6, 7, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    mass = gm2.log_prob(pts).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(float(mass) - 1.0) < 1e-6
    x = gm2.sample(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w, mu, sd = gm2.weights[:, None], gm2.means, gm2.stds
    mean = (w * mu).sum(0)
    var = (w * (sd**2 + mu**2)).sum(0) - mean**2
    torch.testing.assert_close(x.mean(0), mean, atol=4 * math.sqrt(float(var.max()) / 2e5), rtol=0)
    torch.testing.assert_close(x.var(0), var, rtol=0.02, atol=0)


def test_event_shape_and_bad_arguments():
    gm = GaussianMixture(means=torch.zeros(2, 1, 2, 2), stds=1.0)
    path = registry.create("path", "cond_ot")
    x = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    assert gm.predict(x, torch.full((3,), 0.5, dtype=torch.float64), path, "noise").shape == x.shape
    assert gm.sample(5).shape == (5, 1, 2, 2)
    with pytest.raises(InvalidArgumentError, match="stds"):
        GaussianMixture(means=[[0.0]], stds=[-1.0])
    with pytest.raises(InvalidArgumentError, match="weights"):
        GaussianMixture(means=[[0.0], [1.0]], stds=1.0, weights=[1.0])
    with pytest.raises(InvalidArgumentError, match="prediction"):
        gm.predict(x, torch.full((3,), 0.5), path, "eps")
