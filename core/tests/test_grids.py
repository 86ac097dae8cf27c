"""Time grids: endpoints exact, monotone, and uniform in the quantity each grid promises."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.grids import make_grid

f64 = dict(dtype=torch.float64)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"])
@pytest.mark.parametrize("kind", ["uniform", "logsnr", "edm"])
def test_grid_endpoints_and_monotone(path_name, kind):
    path = registry.create("path", path_name)
    t0 = torch.tensor([0.0, 0.2], **f64)
    t1 = torch.tensor([path.t_span[1], 0.7], **f64)
    grid = make_grid(kind, path, t0, t1, 12, "uniform")
    assert grid.shape == (13, 2)
    assert torch.equal(grid[0], t0) and torch.equal(grid[-1], t1)
    assert bool((torch.diff(grid, dim=0) > 0).all())


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"])
@pytest.mark.parametrize("kind", ["logsnr", "edm"])
def test_float32_grids_over_the_whole_span_are_finite(path_name, kind):
    """float32 ends at the path's t_span (pi / 2 rounds up in float32: vp_cosine's cos(pi t / 2)
    is negative at t = 1 unless clamped), as `sample_mixed` builds its grids."""
    path = registry.create("path", path_name)
    t0, t1 = (torch.full((2,), float(v)) for v in path.t_span)
    grid = make_grid(kind, path, t0, t1, 12, "uniform")
    assert bool(torch.isfinite(grid).all()) and bool((torch.diff(grid, dim=0) > 0).all())
    assert bool((path.sigma(grid) >= 0).all())


def test_logsnr_grid_is_uniform_in_log_snr():
    path = registry.create("path", "vp_cosine")
    t0, t1 = torch.tensor([0.1], **f64), torch.tensor([0.9], **f64)
    lam = path.log_snr(make_grid("logsnr", path, t0, t1, 10, "uniform"))
    gaps = torch.diff(lam[:, 0])
    torch.testing.assert_close(gaps, torch.full_like(gaps, float(gaps.mean())))


def test_edm_grid_on_edm_path_is_uniform_in_time():
    path = registry.create("path", "edm")
    t0, t1 = torch.zeros(1, **f64), torch.ones(1, **f64)
    torch.testing.assert_close(
        make_grid("edm", path, t0, t1, 17, "uniform")[:, 0], torch.linspace(0, 1, 18, **f64)
    )
