"""Exact likelihood through the probability-flow ODE, checked against Gaussian mixtures."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.likelihood import divergence, log_likelihood, prior_log_prob, prior_sample
from flowforge.paths import PREDICTIONS
from flowforge.solvers.dopri5 import Dopri5
from flowforge.targets import GaussianMixture
from flowforge.testing.fakes import CountingField

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
    # alpha(t0) ~ 1.6e-4: the corrected source leaves O(alpha^2), the Gaussian one O(alpha)
    assert (logp - GM.marginal_log_prob(x_t1, t, path)).abs().mean().item() < 2e-4


def test_the_source_approximation_is_unbiased_for_small_alpha():
    """vp_linear starts at alpha(0) = 6.6e-3: per-point errors O(alpha), mean error O(alpha^2)."""
    path = registry.create("path", "vp_linear")
    x = _points(400, seed=3)
    t = torch.full((400,), 0.98, dtype=x.dtype)
    x_t = path.sample(torch.zeros_like(x), x, t).x_t
    kw = dict(path=path, prediction="velocity", nfe=200, t_span=(0.0, 0.98))
    exact = GM.marginal_log_prob(x_t, t, path)
    err = log_likelihood(GM.field(path), x_t, prior="gaussian", **kw) - exact
    assert err.abs().mean().item() < 1e-2 and abs(err.mean().item()) < 2e-4
    corrected = log_likelihood(GM.field(path), x_t, **kw) - exact
    assert corrected.abs().mean().item() < err.abs().mean().item() / 10


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


TIGHT = Dopri5(rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "edm"])
def test_matches_the_exact_density_to_1e_3_nats_per_dimension(path_name):
    """dopri5, exact divergence, the default (corrected) source; every point, not on average.

    Measured max per-dimension errors: 2e-4 (cond_ot), 1.2e-4 (vp_cosine), 2e-4 (edm, the
    source residual r(0), see the next test). edm ends at sigma_min = 0.002, so its exact
    density there is the marginal at t = 1; for the other two that is the data density.
    """
    path = registry.create("path", path_name)
    x = _points(64)
    t1 = torch.full((64,), path.t_span[1], dtype=x.dtype)
    logp = log_likelihood(
        GM.field(path), x, path=path, prediction="velocity", solver=TIGHT, nfe=None
    )
    per_dim = (logp - GM.marginal_log_prob(x, t1, path)).abs() / 2
    assert per_dim.max().item() < 1e-3


def test_edm_source_errors_are_the_documented_ones():
    """sigma(0) = 80: the Gaussian source is off at first order, by about |E x_1| / 80 per point;
    the corrected one leaves r(0) = -E|x_1|^2 / (2 * 80^2) (here 3.9e-4 nats per point)."""
    path = registry.create("path", "edm")
    x = _points(64, seed=4)
    t1 = torch.ones(64, dtype=x.dtype)
    exact = GM.marginal_log_prob(x, t1, path)
    kw = dict(path=path, prediction="velocity", solver=TIGHT, nfe=None)
    gaussian = log_likelihood(GM.field(path), x, prior="gaussian", **kw) - exact
    corrected = log_likelihood(GM.field(path), x, **kw) - exact
    second_moment = (GM.weights * ((GM.means**2).sum(1) + (GM.stds**2).sum(1))).sum()
    r0 = -second_moment.item() / (2 * 80.0**2)
    assert gaussian.abs().max().item() > 5 * abs(r0), "the first-order error is visible"
    assert abs(gaussian.mean().item()) < 5e-3, "and averages out over data"
    torch.testing.assert_close(corrected, torch.full_like(corrected, -r0), rtol=0, atol=5e-5)


def test_one_integration_with_one_call_per_evaluation():
    """cond_ot starts at alpha = 0 (no source correction); edm adds one call for it."""
    for path_name, extra in (("cond_ot", 0), ("edm", 1)):
        path = registry.create("path", path_name)
        field = CountingField(GM.field(path))
        log_likelihood(field, _points(8), path=path, prediction="velocity", nfe=24)
        assert field.calls == 24 + extra


def _hutchinson(x, probe, generator, solver="rk4", nfe=40, n_probes=1):
    path = registry.create("path", "cond_ot")
    return log_likelihood(
        GM.field(path), x, path=path, prediction="velocity", solver=solver, nfe=nfe,
        divergence="hutchinson", n_probes=n_probes, probe=probe, generator=generator,
    )  # fmt: skip


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    """Each of 4 points repeated 300 times gets its own probes: the mean is within 4 s.e."""
    x = _points(4, seed=5)
    exact = log_likelihood(GM.field(registry.create("path", "cond_ot")), x, path="cond_ot",
                           prediction="velocity", nfe=40)  # fmt: skip
    est = _hutchinson(x.repeat_interleave(300, 0), probe, torch.Generator().manual_seed(0))
    est = est.reshape(4, 300)
    z = (est.mean(1) - exact) / (est.std(1) / 300**0.5)
    assert z.abs().max().item() < 4, z
    assert est.std(1).min().item() > 1e-3, "an estimator, not the exact trace"


def test_hutchinson_is_seeded_and_averages_probes():
    x = _points(200, seed=6)
    runs = [_hutchinson(x, "rademacher", torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    exact = log_likelihood(GM.field(registry.create("path", "cond_ot")), x, path="cond_ot",
                           prediction="velocity", nfe=40)  # fmt: skip
    many = _hutchinson(x, "rademacher", torch.Generator().manual_seed(0), n_probes=16)
    assert (many - exact).std() < 0.5 * (runs[0] - exact).std(), "16 probes: 1/4 of the s.d."


def test_hutchinson_probes_stay_with_their_samples_under_dopri5():
    """dopri5 calls the field on the samples still running; each keeps its own probes.

    Swapped probes would move an estimate by its standard deviation, 0.1 to 2 nats here.
    """
    x = _points(32, seed=7)
    fixed = _hutchinson(x, "gaussian", torch.Generator().manual_seed(3), nfe=160)
    adaptive = _hutchinson(x, "gaussian", torch.Generator().manual_seed(3), solver=TIGHT, nfe=None)
    torch.testing.assert_close(adaptive, fixed, rtol=0, atol=1e-3)


def test_invalid_options_name_the_valid_ones():
    path = registry.create("path", "cond_ot")
    kw = dict(path=path, prediction="velocity")
    for bad, match in (
        ({"divergence": "trace"}, "'exact', 'hutchinson'"),
        ({"probe": "sphere"}, "'rademacher', 'gaussian'"),
        ({"prior": "flat"}, "'corrected', 'gaussian'"),
        ({"n_probes": 0}, "positive integer"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            log_likelihood(GM.field(path), _points(2), **kw, **bad)
