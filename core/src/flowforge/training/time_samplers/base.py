"""Time samplers: distributions of training times on a path's `t_span`, with stated densities.

A sampler draws `t = F^-1(u)` from uniform variates `u` (see `draws`), so its CDF `F` and
density are known exactly: tests compare histograms with `density`, and a weighting can account
for how often each time is seen.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import Path
from flowforge.training.time_samplers.draws import Draws, unit_draws

Span = tuple[float, float]


@dataclass(frozen=True)
class TimeSampler(abc.ABC):
    """Abstract: a distribution of `t` on `t_span = (t0, t1)` (default: the path's), t0 < t1.

    Subclasses give the inverse CDF, CDF and density on the span (float64 in and out);
    `sample` draws through the inverse CDF, so every sampler supports every `draws` option.

    >>> sampler = registry.create("time_sampler", "logit_normal", draws="stratified")
    >>> t = sampler.sample(256, path, generator=gen, like=x_1)     # (256,), x_1's device/dtype
    >>> sampler.density(torch.linspace(0, 1, 5), path)             # integrates to 1 on the span
    """

    draws: Annotated[
        Draws,
        Field(
            description="iid: independent; stratified: one time per stratum of the batch; "
            "low_discrepancy: a randomly shifted golden-ratio additive recurrence"
        ),
    ] = "iid"

    def sample(
        self,
        n: int,
        path: Path,
        *,
        generator: torch.Generator,
        like: Tensor,
        t_span: Span | None = None,
    ) -> Tensor:
        """`n` times `(n,)` within `t_span`, drawn from `generator` on `like`'s device and dtype."""
        span = self._span(path, t_span)
        u = unit_draws(self.draws, n, generator, like.device)
        t = self._icdf(u, path, span)
        if t is not u or span[0] > 0.0 or span[1] < 1.0:  # the draws themselves lie in [0, 1]
            t = t.clamp(*span)
        return t.to(like.dtype)

    def icdf(self, u: Tensor, path: Path, t_span: Span | None = None) -> Tensor:
        """The time whose CDF is `u` (the quantile function), elementwise."""
        return self._icdf(u.double(), path, self._span(path, t_span)).to(u.dtype)

    def cdf(self, t: Tensor, path: Path, t_span: Span | None = None) -> Tensor:
        """P(T <= t), elementwise; 0 below the span, 1 above it."""
        span = self._span(path, t_span)
        inside = self._cdf(t.double().clamp(*span), path, span).clamp(0.0, 1.0)
        return inside.to(t.dtype)

    def density(self, t: Tensor, path: Path, t_span: Span | None = None) -> Tensor:
        """The probability density of T at `t`, elementwise; 0 outside the span."""
        span = self._span(path, t_span)
        t64 = t.double()
        inside = (t64 >= span[0]) & (t64 <= span[1])
        value = self._density(t64.clamp(*span), path, span)
        return torch.where(inside, value, torch.zeros_like(value)).to(t.dtype)

    @staticmethod
    def _span(path: Path, t_span: Span | None) -> Span:
        t0, t1 = (float(v) for v in (path.t_span if t_span is None else t_span))
        if not t0 < t1:
            raise InvalidArgumentError(
                f"training times need t_span = (t0, t1) with t0 < t1 (noise to data), got "
                f"({t0}, {t1})"
            )
        return t0, t1

    @abc.abstractmethod
    def _icdf(self, u: Tensor, path: Path, span: Span) -> Tensor:
        """Quantile function on the span; `u` float64 in [0, 1]."""

    @abc.abstractmethod
    def _cdf(self, t: Tensor, path: Path, span: Span) -> Tensor:
        """CDF at float64 `t` within the span."""

    @abc.abstractmethod
    def _density(self, t: Tensor, path: Path, span: Span) -> Tensor:
        """Density at float64 `t` within the span."""


@dataclass(frozen=True)
class UnitIntervalSampler(TimeSampler):
    """Abstract: a law on [0, 1] for `s`, stretched onto the span: `t = t0 + (t1 - t0) s`.

    Subclasses give the quantile function, CDF and density of `s`; the path plays no role.
    """

    @abc.abstractmethod
    def unit_icdf(self, u: Tensor) -> Tensor:
        """Quantile function of `s`."""

    @abc.abstractmethod
    def unit_cdf(self, s: Tensor) -> Tensor:
        """CDF of `s` on [0, 1]."""

    @abc.abstractmethod
    def unit_density(self, s: Tensor) -> Tensor:
        """Density of `s` on [0, 1]."""

    def _icdf(self, u: Tensor, path: Path, span: Span) -> Tensor:
        s = self.unit_icdf(u)
        return s if span == (0.0, 1.0) else span[0] + (span[1] - span[0]) * s

    def _cdf(self, t: Tensor, path: Path, span: Span) -> Tensor:
        return self.unit_cdf((t - span[0]) / (span[1] - span[0]))

    def _density(self, t: Tensor, path: Path, span: Span) -> Tensor:
        return self.unit_density((t - span[0]) / (span[1] - span[0])) / (span[1] - span[0])
