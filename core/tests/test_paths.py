"""Path-specific properties (generic ones run for every registered path in test_contracts.py)."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.errors import SpecError

f64 = dict(dtype=torch.float64)


def test_end_points_of_the_standard_paths():
    t = torch.tensor([0.0, 1.0], **f64)
    for name in ("cond_ot", "vp_cosine"):
        path = registry.create("path", name)
        torch.testing.assert_close(
            path.alpha(t), torch.tensor([0.0, 1.0], **f64), atol=1e-15, rtol=0
        )
        torch.testing.assert_close(
            path.sigma(t), torch.tensor([1.0, 0.0], **f64), atol=1e-15, rtol=0
        )
    ve = registry.create("path", "ve", sigma_min=0.01, sigma_max=80.0)
    torch.testing.assert_close(ve.sigma(t), torch.tensor([80.0, 0.01], **f64))


def test_vp_paths_preserve_variance():
    t = torch.linspace(0, 0.999, 101, **f64)
    for name in ("vp_cosine", "vp_linear"):
        path = registry.create("path", name)
        torch.testing.assert_close(path.alpha(t) ** 2 + path.sigma(t) ** 2, torch.ones_like(t))


def test_vp_linear_matches_ddpm_alphas_cumprod():
    """The continuous VP path agrees with DDPM's discrete linear schedule (N=1000) at its steps."""
    n = 1000
    betas = torch.linspace(0.1 / n, 20.0 / n, n, **f64)
    alphas_cumprod = torch.cumprod(1.0 - betas, 0)
    s = torch.arange(1, n + 1, **f64) / n
    path = registry.create("path", "vp_linear", beta_min=0.1, beta_max=20.0)
    ours = path.alpha(1.0 - s) ** 2
    rel = ((ours - alphas_cumprod) / alphas_cumprod)[: n // 2].abs().max()
    assert rel < 0.02, f"relative mismatch {rel:.3g}"


def test_edm_uniform_time_is_karras_schedule():
    path = registry.create("path", "edm", sigma_min=0.002, sigma_max=80.0, rho=7.0)
    n = 18
    i = torch.arange(n, **f64)
    karras = (80.0 ** (1 / 7) + i / (n - 1) * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(path.sigma(i / (n - 1)), karras)


def test_ve_is_log_linear():
    path = registry.create("path", "ve")
    t = torch.linspace(0, 1, 11, **f64)
    steps = torch.diff(torch.log(path.sigma(t)))
    torch.testing.assert_close(steps, torch.full_like(steps, math.log(0.01 / 80.0) / 10))


def test_default_t_spans():
    assert registry.create("path", "cond_ot").t_span == (0.0, 1.0)
    assert registry.create("path", "vp_linear", eps=1e-3).t_span == (0.0, 0.999)


def test_path_params_are_validated():
    with pytest.raises(SpecError, match="sigma_min"):
        registry.create("path", "ve", sigma_min=-1.0)
    with pytest.raises(SpecError, match="unknown key"):
        registry.create("path", "edm", sigma=1.0)
    with pytest.raises(SpecError, match=r"takes no parameters|unknown key"):
        registry.create("path", "cond_ot", alpha=1.0)
