"""The SDE family itself: eta = 1 "ddpm" is DDPM ancestral sampling; both time directions work."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.noise import BrownianTree, seed_from
from flowforge.solvers.euler_maruyama import EulerMaruyama
from flowforge.solvers.reverse_sde import ReverseSDE, diffusion_rate

from .ddpm_reference import ddpm_chain

F64 = torch.float64


def test_reverse_sde_at_eta_one_is_ddpm_ancestral_sampling(mixture):
    """On vp_linear, each step samples the DDPM posterior q(x_prev | x_t, x0 = D) (Ho et al.)."""
    path = registry.create("path", "vp_linear")
    x = torch.randn(6, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(0.0, 0.999, 6, dtype=F64)
    out = flowforge.sample(
        mixture.field(path), x, path=path, prediction="velocity", solver=ReverseSDE(eta=1.0),
        nfe=5, time_grid=grid, generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    # The same Brownian path, rebuilt from the same generator.
    tree = BrownianTree(seed_from(torch.Generator().manual_seed(3), "cpu"), (6, 2), dtype=F64)
    w = [tree(t.expand(6)) for t in grid]
    z = [(w[n + 1] - w[n]) / (grid[n + 1] - grid[n]).sqrt() for n in range(5)]
    x = ddpm_chain(mixture, path, x, grid, z.__getitem__)
    torch.testing.assert_close(out, x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "edm"])
def test_damped_diffusion_is_finite_on_the_whole_span(path_name):
    path = registry.create("path", path_name)
    t = torch.linspace(0.0, 0.999, 50, dtype=F64)
    rate = diffusion_rate(path, t, "damped")
    assert torch.isfinite(rate).all() and (rate >= 0).all()
    ddpm = diffusion_rate(path, t[1:], "ddpm")
    assert (rate[1:] <= ddpm).all(), "damped = ddpm * SNR / (1 + SNR)"


@pytest.mark.parametrize("solver", [ReverseSDE(eta=1.0), EulerMaruyama(eta=1.0)])
def test_backward_in_time_the_sde_keeps_the_marginals(solver, mixture):
    """From exact samples of p_0.95 to t = 0.05: the marginal's mean and covariance."""
    path = registry.create("path", "vp_cosine")
    n = 4000
    gen = torch.Generator().manual_seed(0)
    t_start, t_end = torch.full((n,), 0.95, dtype=F64), torch.full((n,), 0.05, dtype=F64)
    noise = torch.randn(n, 2, dtype=F64, generator=gen)
    x = path.sample(noise, mixture.sample(n, gen, F64), t_start).x_t
    out = flowforge.sample(
        mixture.field(path), x, path=path, prediction="velocity", solver=solver, nfe=200,
        t_span=(0.95, 0.05), generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    a, s = path.alpha(t_end[:1]), path.sigma(t_end[:1])
    data = mixture.sample(400_000, torch.Generator().manual_seed(2), F64)
    mean, cov = a * data.mean(0), a**2 * data.T.cov() + s**2 * torch.eye(2, dtype=F64)
    torch.testing.assert_close(out.mean(0), mean, rtol=0, atol=4 * (cov.diag() / n).sqrt().max())
    torch.testing.assert_close(out.T.cov(), cov, rtol=0.08, atol=0.02)


def test_dpm_solver_pp_sde_is_k_diffusions_dpmpp_2m_sde(mixture):
    """Against a transcription of k-diffusion's `sample_dpmpp_2m_sde` (solver_type "midpoint",
    VE form: alpha = 1), fed the same Brownian increments, on a grid that ends at sigma > 0."""
    path = registry.create("path", "edm")
    grid = torch.linspace(0.0, 1.0, 13, dtype=F64)
    sigmas = path.sigma(grid)
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    tree = BrownianTree(seed_from(torch.Generator().manual_seed(3), "cpu"), (5, 2), dtype=F64)
    w = [tree(t.expand(5)) for t in grid]
    for eta in (0.5, 1.0):
        out = flowforge.sample(
            mixture.field(path, "data"), x, path=path, prediction="data", nfe=12,
            solver=registry.create("solver", "dpm_solver_pp_sde", eta=eta), time_grid=grid,
            generator=torch.Generator().manual_seed(3),
        )  # fmt: skip
        ref, old, h_last = x, None, None
        for i in range(12):
            denoised = mixture.predict(ref, grid[i].expand(5), path, "data")
            h = sigmas[i].log() - sigmas[i + 1].log()
            ref = sigmas[i + 1] / sigmas[i] * (-eta * h).exp() * ref
            ref = ref - (-h - eta * h).expm1() * denoised
            if old is not None:
                ref = ref - 0.5 * (-h - eta * h).expm1() * (h / h_last) * (denoised - old)
            xi = (w[i + 1] - w[i]) / (grid[i + 1] - grid[i]).sqrt()
            ref = ref + xi * sigmas[i + 1] * (-(-2 * eta * h).expm1()).sqrt()
            old, h_last = denoised, h
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
