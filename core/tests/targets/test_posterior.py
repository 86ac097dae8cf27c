"""The exact mixture posterior: checked by closed forms, quadrature, Bayes' rule and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.operators import Dense, Mask, gaussian_matrix, random_mask
from flowforge.targets import GaussianMixture

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def prior() -> GaussianMixture:
    g = gen(0)
    return GaussianMixture(
        means=2.0 * torch.randn(3, 8, generator=g, dtype=F64),
        stds=0.3 + torch.rand(3, 8, generator=g, dtype=F64),
        weights=[0.2, 0.3, 0.5],
    )


def measure(prior: GaussianMixture, op, seed: int = 1) -> torch.Tensor:
    x = prior.sample(1, gen(seed), dtype=F64)
    return op.simulate(x, gen(seed + 1))[0]


@pytest.mark.parametrize("noise_std", [0.0, 0.2])
def test_mask_posterior_is_the_per_coordinate_update(prior, noise_std):
    """A mask observes coordinates of a diagonal prior: each updates alone, in closed form."""
    mask = random_mask((8,), 0.5, gen(3))
    op = Mask(mask, noise_std=noise_std)
    y = measure(prior, op)
    post = prior.posterior(op, y)
    mu, var = prior.means, prior.stds.square()
    gain = torch.where(mask, var / (var + noise_std**2), torch.zeros_like(var))
    y_full = torch.zeros(8, dtype=F64).masked_scatter(mask, y)
    means = mu + gain * (y_full - mu)
    variances = (1 - gain) * var
    log_lik = torch.distributions.Normal(mu[:, mask], (var[:, mask] + noise_std**2).sqrt())
    logits = prior.weights.log() + log_lik.log_prob(y).sum(1)
    torch.testing.assert_close(post.means, means)
    torch.testing.assert_close(post.covariances, torch.diag_embed(variances))
    torch.testing.assert_close(post.weights, torch.softmax(logits, 0))
    torch.testing.assert_close(post.log_evidence, torch.logsumexp(logits, 0))


def test_dense_posterior_matches_quadrature_in_2d():
    """Posterior mean, covariance, weights and evidence by summing p(x) p(y | x) on a grid."""
    prior = GaussianMixture(
        means=[[-1.5, 0.5], [1.0, -1.0]], stds=[[0.5, 0.8], [0.7, 0.4]], weights=[0.4, 0.6]
    )
    op = Dense(torch.tensor([[0.8, -0.6]]), noise_std=0.3)
    y = torch.tensor([0.4], dtype=F64)
    post = prior.posterior(op, y)
    h = 0.02  # the Riemann sum of a smooth, rapidly decaying density converges spectrally
    axis = torch.arange(-6, 6, h, dtype=F64)
    grid = torch.cartesian_prod(axis, axis)
    log_joint = prior.log_prob(grid) + op.log_likelihood(grid, y.expand(len(grid), 1))
    log_z = torch.logsumexp(log_joint, 0) + 2 * math.log(h)
    p = (log_joint - torch.logsumexp(log_joint, 0)).exp()
    mean = p @ grid
    cov = (p[:, None] * (grid - mean)).T @ (grid - mean)
    resp = post.responsibilities(grid)
    torch.testing.assert_close(post.mean, mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(post.covariance, cov, rtol=0, atol=1e-8)
    torch.testing.assert_close(post.weights, p @ resp, rtol=0, atol=1e-8)
    torch.testing.assert_close(post.log_evidence, log_z, rtol=0, atol=1e-8)
    torch.testing.assert_close(post.log_prob(grid[::97]), (log_joint - log_z)[::97])


@pytest.mark.parametrize("operator", ["dense", "blur", "mri"])
def test_bayes_rule(operator):
    """log p(x | y) = log p(x) + log p(y | x) - log p(y); p(y) is the mixture of N(A mu_k, .)."""
    prior = GaussianMixture(
        means=torch.randn(3, 4, 4, generator=gen(0), dtype=F64),
        stds=0.5 + torch.rand(3, 16, generator=gen(1), dtype=F64).reshape(3, 4, 4),
        weights=[0.3, 0.3, 0.4],
    )
    params = {"dense": {}, "blur": {"std": 0.6}, "mri": {"acceleration": 2}}[operator]
    op = registry.get("operator", operator).build({**params, "noise_std": 0.4}, data_shape=(4, 4))
    y = measure(prior, op)
    post = prior.posterior(op, y)
    x = 2 * torch.randn(6, 4, 4, generator=gen(5), dtype=F64)
    bayes = prior.log_prob(x) + op.log_likelihood(x, y.expand(6, *y.shape)) - post.log_evidence
    torch.testing.assert_close(post.log_prob(x), bayes, rtol=1e-10, atol=1e-10)
    a = op.matrix()
    cov = prior.stds.square()[:, None, :] * a[None] @ a.T + 0.16 * torch.eye(len(a), dtype=F64)
    evidence = torch.distributions.MultivariateNormal(prior.means @ a.T, cov).log_prob(y.flatten())
    expected = torch.logsumexp(evidence + prior.weights.log(), 0)
    torch.testing.assert_close(post.log_evidence, expected)


@pytest.mark.parametrize(
    ("name", "params"),
    [("mask", {"fraction": 0.5}), ("dense", {"measurements": 4, "noise_std": 0.3})],
)
def test_exact_samples_match_the_moments(prior, name, params):
    """Sample mean, covariance and component frequencies within 3 standard errors."""
    op = registry.get("operator", name).build(params, data_shape=(8,))
    post = prior.posterior(op, measure(prior, op))
    n = 20_000
    x = post.sample(n, gen(7), dtype=F64)
    assert x.shape == (n, 8)
    mean_se = post.covariance.diagonal().sqrt() / math.sqrt(n)
    assert bool(((x.mean(0) - post.mean).abs() <= 3 * mean_se + 1e-12).all())
    centred = x - post.mean
    products = centred[:, :, None] * centred[:, None, :]
    cov_se = products.std(0) / math.sqrt(n)
    assert bool(((products.mean(0) - post.covariance).abs() <= 3 * cov_se + 1e-12).all())
    # E_{x ~ p(x|y)} p(k | x, y) = p(k | y): the mean responsibility estimates the weights.
    resp = post.responsibilities(x)
    resp_se = resp.std(0) / math.sqrt(n)
    assert bool(((resp.mean(0) - post.weights).abs() <= 3 * resp_se + 1e-12).all())


@pytest.mark.parametrize(
    ("name", "shape", "params"),
    [
        ("mask", (8,), {"fraction": 0.25}),
        ("dense", (8,), {"measurements": 5}),
        ("downsample", (8,), {"spatial_dims": 1}),
        ("mri", (4, 4), {"acceleration": 2}),  # 16 rows of rank < 16: redundant conjugate pairs
        ("compose", (4, 4), {}),
    ],
)
def test_noiseless_posterior_is_consistent_with_the_measurement(name, shape, params):
    op = registry.get("operator", name).build(params, data_shape=shape)
    prior = GaussianMixture(
        means=torch.randn(2, *shape, generator=gen(2), dtype=F64), stds=[0.5, 1.2], weights=[1, 2]
    )
    y = measure(prior, op)
    post = prior.posterior(op, y)
    x = post.sample(500, gen(3), dtype=F64)
    scale = 1 + float(y.abs().max())
    assert float((op.forward(x) - y).abs().max()) < 1e-10 * scale
    assert float((op.forward(post.means.reshape(2, *shape)) - y).abs().max()) < 1e-10 * scale
    assert bool(torch.isfinite(post.log_prob(x)).all())


def test_noiseless_density_integrates_to_one_on_the_line():
    """A x = y with A (1, 2): the posterior is a density along a line, prop. to the prior there."""
    prior = GaussianMixture(means=[[-1.0, 1.0], [1.0, 0.0]], stds=[0.6, 0.9], weights=[0.5, 0.5])
    a = torch.tensor([[1.0, 2.0]], dtype=F64)
    post = prior.posterior(a, [0.7], noise_std=0.0)
    start = torch.tensor([0.7, 0.0], dtype=F64)
    direction = torch.tensor([-2.0, 1.0], dtype=F64) / math.sqrt(5)
    h = 0.002
    s = torch.arange(-10, 10, h, dtype=F64)
    points = start + s[:, None] * direction
    log_p = post.log_prob(points)
    assert abs(float(log_p.exp().sum() * h) - 1) < 1e-8
    gap = log_p - prior.log_prob(points)
    torch.testing.assert_close(gap, gap[0].expand_as(gap))


def test_small_noise_tends_to_the_noiseless_posterior(prior):
    op = Dense(gaussian_matrix(3, 8, gen(4)))
    y = measure(prior, op)
    exact = prior.posterior(op, y, noise_std=0.0)
    near = prior.posterior(op, y, noise_std=1e-5)
    torch.testing.assert_close(near.means, exact.means, rtol=0, atol=1e-6)
    torch.testing.assert_close(near.weights, exact.weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(near.covariances, exact.covariances, rtol=0, atol=1e-6)


def test_operator_and_its_matrix_give_the_same_posterior(prior):
    op = registry.get("operator", "blur").build(
        {"std": 1.0, "spatial_dims": 1, "noise_std": 0.1}, data_shape=(8,)
    )
    y = measure(prior, op)
    by_op, by_matrix = prior.posterior(op, y), prior.posterior(op.matrix(), y, noise_std=0.1)
    torch.testing.assert_close(by_op.means, by_matrix.means)
    torch.testing.assert_close(by_op.log_weights, by_matrix.log_weights)


def test_sample_is_reproducible_and_shaped(prior):
    op = Mask(random_mask((8,), 0.5, gen(0)), noise_std=0.1)
    post = prior.posterior(op, measure(prior, op))
    a, b = post.sample(5, gen(1)), post.sample(5, gen(1))
    assert a.dtype == torch.float32 and torch.equal(a, b) and post.mean.shape == (8,)


def test_bad_inputs(prior):
    op = Dense(gaussian_matrix(3, 8, gen(0)))
    with pytest.raises(InvalidArgumentError, match="one measurement of shape"):
        prior.posterior(op, torch.zeros(2, 3))
    with pytest.raises(InvalidArgumentError, match=r"shape \(m, 8\)"):
        prior.posterior(torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(InvalidArgumentError, match="noise_std"):
        prior.posterior(op, torch.zeros(3), noise_std=-0.1)
    with pytest.raises(InvalidArgumentError, match="data_shape=\\(8,\\)"):
        prior.posterior(Mask(torch.ones(4, dtype=torch.bool)), torch.zeros(4))
    redundant = torch.tensor([[1.0] + [0.0] * 7, [1.0] + [0.0] * 7])
    with pytest.raises(InvalidArgumentError, match="not in the range of A"):
        prior.posterior(redundant, [1.0, 2.0], noise_std=0.0)
