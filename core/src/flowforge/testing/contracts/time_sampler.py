"""The time-sampler contract: a stated density that integrates to 1 and that the samples follow.

Statistical checks compare `n` samples with the sampler's own CDF and density at significance
1e-3 (Kolmogorov-Smirnov, and chi-square on equiprobable bins), from the seeded `generator`
fixture: a correct sampler fails one with probability 1e-3 per seed, a wrong one almost surely.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import ClassVar

import pytest
import torch
from scipy import stats
from torch import Tensor

from flowforge import registry
from flowforge.paths import Path
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require
from flowforge.training.time_samplers import TimeSampler

F64 = torch.float64
ALPHA = 1e-3
PATHS = ("cond_ot", "vp_cosine", "vp_linear", "ve", "edm")
DRAWS = ("iid", "stratified", "low_discrepancy")


def _grid(span: tuple[float, float], n: int = 200_001) -> Tensor:
    return torch.linspace(span[0], span[1], n, dtype=F64)


class TimeSamplerContract(Contract):
    """Contract for `flowforge.training.time_samplers.TimeSampler`, on every core path.

    Checks: `density` integrates to 1 over the span and is 0 outside it; `cdf` is its integral
    and `icdf` inverts `cdf`; samples lie in the span, follow `cdf` (KS) and `density`
    (chi-square) for every `draws` option; an explicit `t_span` is honoured; samples take the
    device and dtype of `like` and depend only on the generator.

        class TestMySampler(TimeSamplerContract):
            name = "my_sampler"
    """

    kind = "time_sampler"
    n: ClassVar[int] = 20_000
    batch: ClassVar[int] = 250

    def _draw(self, sampler: TimeSampler, path: Path, generator, span=None) -> Tensor:
        """`n` times in batches of `batch` (stratified draws are even within a batch only)."""
        like = torch.zeros(1, dtype=F64)
        return torch.cat(
            [
                sampler.sample(self.batch, path, generator=generator, like=like, t_span=span)
                for _ in range(self.n // self.batch)
            ]
        )

    @pytest.mark.parametrize("path_name", PATHS)
    def test_density_integrates_to_one(self, component: TimeSampler, path_name: str):
        path = registry.create("path", path_name)
        t = _grid(path.t_span)
        density = component.density(t, path)
        require(
            torch.isfinite(density).all() and (density >= 0).all(),
            "expected torch.isfinite(density).all() and (density >= 0).all()",
        )
        require(
            float(torch.trapezoid(density, t)) == pytest.approx(1.0, abs=1e-4),
            "expected float(torch.trapezoid(density, t)) == pytest.approx(1.0, abs=1e-4)",
        )
        outside = torch.tensor([path.t_span[0] - 0.01, path.t_span[1] + 0.01], dtype=F64)
        require(
            torch.equal(component.density(outside, path), torch.zeros(2, dtype=F64)),
            "expected torch.equal(component.density(outside, path), torch.zeros(2, dtype=F64))",
        )

    @pytest.mark.parametrize("path_name", PATHS)
    def test_cdf_integrates_density_and_icdf_inverts_it(
        self, component: TimeSampler, path_name: str
    ):
        path = registry.create("path", path_name)
        t = _grid(path.t_span)
        density = component.density(t, path)
        integral = torch.cat([torch.zeros(1, dtype=F64), torch.cumulative_trapezoid(density, t)])
        cdf = component.cdf(t, path)
        require(
            float((cdf - integral).abs().max()) < 1e-4,
            "expected float((cdf - integral).abs().max()) < 1e-4",
        )
        u = torch.linspace(0.001, 0.999, 999, dtype=F64)
        torch.testing.assert_close(component.cdf(component.icdf(u, path), path), u)

    @pytest.mark.parametrize("draws", DRAWS)
    @pytest.mark.parametrize("path_name", PATHS)
    def test_samples_follow_cdf_and_density(
        self, component: TimeSampler, path_name: str, draws: str, generator
    ):
        path = registry.create("path", path_name)
        sampler = dataclasses.replace(component, draws=draws)
        t = self._draw(sampler, path, generator)
        require(
            path.t_span[0] <= float(t.min()) and float(t.max()) <= path.t_span[1],
            "expected path.t_span[0] <= float(t.min()) and float(t.max()) <= path.t_span[1]",
        )
        ks = stats.kstest(t.numpy(), lambda x: sampler.cdf(torch.from_numpy(x), path).numpy())
        require(ks.pvalue > ALPHA, f"KS statistic {ks.statistic:.4f} (p = {ks.pvalue:.2e})")
        # Equiprobable bins by the quantile function; expected counts from the density alone.
        bins = 40
        edges = sampler.icdf(torch.linspace(0, 1, bins + 1, dtype=F64), path)
        probs = torch.stack(
            [
                torch.trapezoid(sampler.density(g, path), g)
                for g in (
                    torch.linspace(a, b, 2001, dtype=F64) for a, b in itertools.pairwise(edges)
                )
            ]
        )
        counts = torch.histogram(t, edges).hist
        chi2 = float((((counts - len(t) * probs) ** 2) / (len(t) * probs)).sum())
        require(chi2 < stats.chi2.ppf(1 - ALPHA, bins - 1), f"chi-square {chi2:.1f}")

    def test_explicit_t_span_is_honoured(self, component: TimeSampler, generator):
        path, span = registry.create("path", "cond_ot"), (0.2, 0.7)
        t = self._draw(component, path, generator, span)
        require(
            span[0] <= float(t.min()) and float(t.max()) <= span[1],
            "expected span[0] <= float(t.min()) and float(t.max()) <= span[1]",
        )
        grid = _grid(span)
        mass = float(torch.trapezoid(component.density(grid, path, span), grid))
        require(
            mass == pytest.approx(1.0, abs=1e-4), "expected mass == pytest.approx(1.0, abs=1e-4)"
        )

    def test_follows_like_and_the_generator(self, component: TimeSampler):
        path = registry.create("path", "cond_ot")
        like = torch.zeros(3, dtype=torch.float32)
        draw = lambda seed: component.sample(
            64, path, generator=torch.Generator().manual_seed(seed), like=like
        )
        t = draw(5)
        require(
            t.shape == (64,) and t.dtype == torch.float32 and t.device == like.device,
            "expected t.shape == (64,) and t.dtype == torch.float32 and t.device == like.device",
        )
        require(
            torch.equal(t, draw(5)) and not torch.equal(t, draw(6)),
            "expected torch.equal(t, draw(5)) and not torch.equal(t, draw(6))",
        )
