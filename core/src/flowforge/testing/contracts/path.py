"""The path contract: the schedule, sampling and prediction conversions of a probability path.

Checks run in float64 at interior times of the path's default `t_span` (5% to 95% of it), where
every affine path has finite alpha, sigma, log-SNR and conversions.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor

from flowforge.grids import GRIDS
from flowforge.paths import PREDICTIONS, AffinePath, Path
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require

F64 = torch.float64


def interior_times(path: Path, n: int) -> Tensor:
    """`n` float64 times spread over the inner 90% of the path's default `t_span`."""
    t0, t1 = path.t_span
    return t0 + (t1 - t0) * torch.linspace(0.05, 0.95, n, dtype=F64)


class PathContract(Contract):
    """Contract for `flowforge.paths.Path`; the affine tests skip for non-affine paths.

    Checks: the default `t_span` lies in [0, 1]; `recommended_grid` (what `time_grid="auto"`
    takes on the path) is None or a named grid; `sample` keeps shapes and dtype for per-sample
    `t (B,)` and images `(B, C, H, W)`; for affine paths, `x_t = alpha x_1 + sigma x_0` and
    `dx_t = d_alpha x_1 + d_sigma x_0`, derivatives agree with central finite differences,
    log-SNR is `log(alpha^2 / sigma^2)`, increasing and inverted by `t_from_log_snr`, and
    `convert` maps the exact predictions of every kind onto each other (all ordered pairs).

        class TestMyPath(PathContract):
            name = "my_path"
    """

    kind = "path"
    shape = (2, 3, 4, 5)

    @pytest.fixture
    def affine(self, component: Path) -> AffinePath:
        if not isinstance(component, AffinePath):
            pytest.skip(f"{type(component).__name__} is not an affine path")
        return component

    def _endpoints(self, path: Path, generator: torch.Generator, dtype=F64):
        x_0 = torch.randn(self.shape, generator=generator, dtype=dtype)
        x_1 = torch.randn(self.shape, generator=generator, dtype=dtype)
        return x_0, x_1, interior_times(path, self.shape[0]).to(dtype)

    def test_t_span_in_unit_interval(self, component: Path):
        t0, t1 = component.t_span
        require(0.0 <= t0 < t1 <= 1.0, f"t_span {component.t_span} must satisfy 0 <= t0 < t1 <= 1")

    def test_recommended_grid_is_a_named_grid(self, component: Path):
        named = [g for g in GRIDS if g != "auto"]
        require(
            component.recommended_grid is None or component.recommended_grid in named,
            f"recommended_grid {component.recommended_grid!r} must be None (the solver's "
            f"default_grid) or one of {', '.join(named)}",
        )

    def test_sample_keeps_shapes_and_dtype(self, component: Path, generator: torch.Generator):
        x_0, x_1, t = self._endpoints(component, generator, dtype=torch.float32)
        s = component.sample(x_0, x_1, t)
        for name in ("x_t", "dx_t"):
            value = getattr(s, name)
            require(value.shape == x_1.shape, f"{name} has shape {tuple(value.shape)}")
            require(value.dtype == torch.float32, f"{name} is {value.dtype} for float32 inputs")

    def test_sample_is_affine_combination(self, affine: AffinePath, generator: torch.Generator):
        x_0, x_1, t = self._endpoints(affine, generator)
        s = affine.sample(x_0, x_1, t)
        for i, ti in enumerate(t):
            x_t = affine.alpha(ti) * x_1[i] + affine.sigma(ti) * x_0[i]
            dx_t = affine.d_alpha(ti) * x_1[i] + affine.d_sigma(ti) * x_0[i]
            torch.testing.assert_close(s.x_t[i], x_t, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(s.dx_t[i], dx_t, rtol=1e-12, atol=1e-12)

    def test_derivatives_match_finite_differences(self, affine: AffinePath):
        t, h = interior_times(affine, 19), 1e-6
        for f, df in ((affine.alpha, affine.d_alpha), (affine.sigma, affine.d_sigma)):
            fd = (f(t + h) - f(t - h)) / (2 * h)
            scale = float(f(t).abs().max() + df(t).abs().max())
            torch.testing.assert_close(
                df(t), fd, rtol=1e-7, atol=1e-7 * scale, msg=lambda m, n=df.__name__: f"{n}: {m}"
            )

    def test_log_snr_is_log_alpha2_over_sigma2(self, affine: AffinePath):
        t = interior_times(affine, 19)
        expected = 2.0 * torch.log(affine.alpha(t) / affine.sigma(t))
        torch.testing.assert_close(affine.log_snr(t), expected, rtol=1e-10, atol=1e-10)

    def test_log_snr_increasing(self, affine: AffinePath):
        steps = affine.log_snr(interior_times(affine, 201)).diff()
        require(bool((steps > 0).all()), "log_snr must increase strictly with t (t=1 is data)")

    def test_t_from_log_snr_inverts_log_snr(self, affine: AffinePath):
        t = interior_times(affine, 19)
        torch.testing.assert_close(affine.t_from_log_snr(affine.log_snr(t)), t, rtol=0, atol=1e-10)

    def test_convert_maps_exact_predictions(self, affine: AffinePath, generator: torch.Generator):
        x_0, x_1, t = self._endpoints(affine, generator)
        s = affine.sample(x_0, x_1, t)
        sigma = affine.sigma(t).reshape(-1, *[1] * (x_1.ndim - 1))
        exact = {"data": x_1, "noise": x_0, "velocity": s.dx_t, "score": -x_0 / sigma}
        for source, target in itertools.product(PREDICTIONS, repeat=2):
            got = affine.convert(exact[source], source, target, s.x_t, t)
            torch.testing.assert_close(
                got,
                exact[target],
                rtol=1e-10,
                atol=1e-10,
                msg=lambda m, a=source, b=target: f"{a} -> {b}: {m}",
            )

    def test_convert_round_trips(self, affine: AffinePath, generator: torch.Generator):
        x_t, pred, t = self._endpoints(affine, generator)
        for source, target in itertools.permutations(PREDICTIONS, 2):
            there = affine.convert(pred, source, target, x_t, t)
            back = affine.convert(there, target, source, x_t, t)
            torch.testing.assert_close(
                back,
                pred,
                rtol=1e-10,
                atol=1e-10,
                msg=lambda m, a=source, b=target: f"{a} -> {b} -> {a}: {m}",
            )
