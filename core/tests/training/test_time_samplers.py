"""Time samplers: every registered one meets the contract; each matches its paper's definition."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.graph.host_sync import forbid_host_sync
from flowforge.paths import EDM, CondOT, Path, VPLinear
from flowforge.testing import TimeSamplerContract, registered
from flowforge.training.time_samplers import LogitNormal, LogNormal, Uniform, UShaped, unit_draws

F64 = torch.float64


@pytest.mark.parametrize("component_name", registered("time_sampler"))
class TestRegisteredTimeSamplers(TimeSamplerContract):
    """Core's and installed plugins' time samplers."""


def test_uniform_and_logit_normal_densities_are_the_textbook_ones():
    t = torch.tensor([0.1, 0.35, 0.8], dtype=F64)
    path = CondOT()
    torch.testing.assert_close(Uniform().density(t, path), torch.ones(3, dtype=F64))
    sampler = LogitNormal(mean=0.3, std=0.7)
    expected = stats.norm.pdf(torch.logit(t).numpy(), 0.3, 0.7) / (t * (1 - t)).numpy()
    torch.testing.assert_close(sampler.density(t, path), torch.from_numpy(expected))


def test_u_shaped_is_the_mirrored_truncated_exponential_of_rectified_flow_pp():
    """Lee et al. draw `s` with density `a e^(a s) / (e^a - 1)` on [0, 1], then use `s` or `1 - s`
    with probability 1/2: the mixture's density is the mean of the two."""
    a, s = 4.0, torch.linspace(0, 1, 11, dtype=F64)
    expo = lambda x: a * torch.exp(a * x) / math.expm1(a)
    mixture = 0.5 * (expo(s) + expo(1 - s))
    torch.testing.assert_close(UShaped(a=a).density(s, CondOT()), mixture)


def test_lognormal_gives_edm_noise_levels_on_every_path(generator):
    """On the EDM path (alpha = 1) and on cond_ot (sigma_edm = (1 - t) / t) the drawn noise
    levels are EDM's: `log sigma ~ N(-1.2, 1.2^2)`, truncated to the path's range of levels."""
    sampler = LogNormal(mean=-1.2, std=1.2)
    like = torch.zeros(1, dtype=F64)
    for path, level in ((EDM(), lambda t: EDM().sigma(t)), (CondOT(), lambda t: (1 - t) / t)):
        t = sampler.sample(20_000, path, generator=generator, like=like)
        lo, hi = (float(torch.log(level(torch.tensor(e, dtype=F64)))) for e in (1.0, 0.0))
        a, b = (lo + 1.2) / 1.2, (hi + 1.2) / 1.2
        ks = stats.kstest(torch.log(level(t)).numpy(), stats.truncnorm(a, b, -1.2, 1.2).cdf)
        assert ks.pvalue > 1e-3, f"{type(path).__name__}: KS p = {ks.pvalue:.2e}"


def test_default_span_is_the_paths():
    """vp_linear stops at t = 1 - eps: no sampler puts mass beyond it."""
    path = VPLinear(eps=0.01)
    for sampler in (Uniform(), LogitNormal(), UShaped(), LogNormal()):
        t = sampler.sample(
            5000, path, generator=torch.Generator().manual_seed(0), like=torch.zeros(1)
        )
        assert float(t.max()) <= 0.99
        assert float(sampler.cdf(torch.tensor([0.99]), path)) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [7, 64, 250])
def test_stratified_draws_put_one_sample_in_each_stratum(n, generator):
    u = unit_draws("stratified", n, generator, torch.device("cpu"))
    assert torch.equal(torch.sort(torch.floor(u * n)).values, torch.arange(n, dtype=F64))
    # The order is random, so every micro-batch of the batch sees a spread of times.
    assert not torch.equal(torch.floor(u * n), torch.arange(n, dtype=F64))


@pytest.mark.parametrize("n", [64, 250, 1024])
def test_low_discrepancy_draws_cover_the_interval_evenly(n, generator):
    """The golden-ratio recurrence has discrepancy O(log(n) / n), against about 0.9 / sqrt(n) for
    i.i.d. uniforms (measured 1.4/n to 2/n for these n); by the three-gap theorem the gaps
    between its sorted points take at most three sizes."""
    u = unit_draws("low_discrepancy", n, generator, torch.device("cpu"))
    assert ((u >= 0) & (u < 1)).all()
    ks = stats.kstest(u.numpy(), "uniform").statistic
    assert ks < math.log(n) / n < 0.9 / math.sqrt(n)
    gaps = torch.diff(torch.sort(u).values)
    assert len(torch.unique(torch.round(gaps * 1e9))) <= 3


def test_stratified_batches_have_lower_loss_variance_than_iid():
    """What the options are for: the batch mean of a smooth function of t varies much less."""
    path = CondOT()
    means = {}
    for draws in ("iid", "stratified", "low_discrepancy"):
        sampler, gen = LogitNormal(draws=draws), torch.Generator().manual_seed(0)
        batches = (
            sampler.sample(64, path, generator=gen, like=torch.zeros(1, dtype=F64))
            for _ in range(400)
        )
        means[draws] = torch.stack([torch.sin(3 * t).mean() for t in batches])
    assert means["stratified"].var() < 0.1 * means["iid"].var()
    assert means["low_discrepancy"].var() < 0.1 * means["iid"].var()


def test_bad_span_and_non_affine_paths_are_clear_errors():
    with pytest.raises(InvalidArgumentError, match="t0 < t1"):
        Uniform().sample(
            4, CondOT(), generator=torch.Generator(), like=torch.zeros(1), t_span=(1.0, 0.0)
        )

    class Curved(Path):
        def sample(self, x_0, x_1, t):
            raise NotImplementedError

    with pytest.raises(InvalidArgumentError, match="lognormal needs an affine path"):
        LogNormal().sample(4, Curved(), generator=torch.Generator(), like=torch.zeros(1))


def test_spec_names_and_params_reach_the_sampler():
    sampler = registry.create("time_sampler", "logit_normal", mean=0.5, draws="stratified")
    assert sampler == LogitNormal(mean=0.5, std=1.0, draws="stratified")


@pytest.mark.parametrize("draws", ["iid", "stratified", "low_discrepancy"])
@pytest.mark.parametrize("name", ["uniform", "logit_normal", "u_shaped", "lognormal"])
def test_sampling_never_synchronises_with_the_host(name, draws):
    sampler = registry.create("time_sampler", name, draws=draws)
    like, gen = torch.zeros(1), torch.Generator().manual_seed(0)
    for path in (CondOT(), VPLinear(), EDM()):
        with forbid_host_sync():
            sampler.sample(64, path, generator=gen, like=like)
