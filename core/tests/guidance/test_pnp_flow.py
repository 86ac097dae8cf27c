"""PnP-Flow through the driver's hooks is the paper's loop, on any affine path and solver that
evaluates at the start of its steps."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.guidance import PnPFlow
from flowforge.testing import mixture_problem

F64 = torch.float64


def paper_loop(problem, path, times, x_init, gen, lr, exponent, samples):
    """Martin et al. 2025, Algorithm 1 on the grid `times (K + 1, B)`, written out: denoise at
    t_k (averaging `samples` draws from k = 1 on), fidelity step, re-noise at t_{k + 1}."""
    prior, m = problem.prior, problem.measurement
    op = m.operator

    def denoise(x, t):
        return prior.predict(x, t, path, "data")

    def carry(z, t):
        eps = torch.randn(z.shape, generator=gen, dtype=z.dtype)
        return path.alpha(t)[:, None] * z + path.sigma(t)[:, None] * eps

    point, z = x_init, None
    steps = times.shape[0] - 1
    for k in range(steps):
        t, t_next = times[k], times[k + 1]
        data = denoise(point, t)
        if z is not None and samples > 1:
            extra = [denoise(carry(z, t), t) for _ in range(samples - 1)]
            data = (data + sum(extra)) / samples
        if k == steps - 1:
            return data
        r = path.sigma(t_next) / (path.alpha(t_next) + path.sigma(t_next))
        z = data + lr * r[:, None] ** exponent * op.adjoint(m.residual(data))
        point = carry(z, t_next)
    raise AssertionError("no steps")


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_linear"])
@pytest.mark.parametrize("solver", ["euler", "ddim"])
@pytest.mark.parametrize("samples", [1, 3])
@pytest.mark.parametrize("per_sample_span", [False, True])
def test_hooks_reproduce_the_papers_loop(path_name, solver, samples, per_sample_span):
    """Exactly (to rounding) the written-out loop, with the path's own alpha and sigma, and
    per-sample time grids (each sample's step uses its own noise fraction)."""
    problem = mixture_problem("dense", d=8, seed=3)
    path = registry.create("path", path_name)
    guidance = PnPFlow(measurement=problem.measurement, lr=0.3, exponent=0.7, samples=samples)
    x_init = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), dtype=F64)
    t_span = None
    if per_sample_span:
        t0 = torch.linspace(0.0, 0.4, 64, dtype=F64)
        t_span = (t0, torch.full((64,), path.t_span[1], dtype=F64))
    out = flowforge.sample(
        problem.prior.field(path),
        x_init,
        path=path,
        prediction="velocity",
        solver=solver,
        nfe=12,
        guidance=[guidance],
        generator=torch.Generator().manual_seed(1),
        return_trajectory=True,
        t_span=t_span,
    )
    times = out.times
    gen = torch.Generator().manual_seed(1)
    ref = paper_loop(problem, path, times, x_init, gen, 0.3, 0.7, samples)
    torch.testing.assert_close(out.x, ref, rtol=1e-10, atol=1e-10)


def test_noise_fraction_schedule_shrinks_the_fidelity_step():
    """gamma = lr r^exponent: a larger exponent takes smaller steps, so the samples end
    further from y; exponent 0 takes the full step throughout."""
    problem = mixture_problem("mask", d=8, seed=3)
    residual = {}
    for exponent in (0.0, 0.5, 2.0):
        guidance = PnPFlow(measurement=problem.measurement, lr=0.5, exponent=exponent)
        x = problem.solve([guidance], n=200, nfe=30)
        residual[exponent] = float(problem.measurement.residual(x).norm(dim=1).mean())
    assert residual[0.0] < residual[0.5] < residual[2.0], residual


def test_prediction_kind_does_not_matter():
    """The denoiser is the data prediction whatever the model predicts (t0 > 0: a noise
    prediction has no data estimate at pure noise)."""
    problem = mixture_problem("mask", d=8, seed=3)
    guidance = [PnPFlow(measurement=problem.measurement)]
    runs = [
        problem.solve(guidance, n=50, nfe=10, prediction=kind, t_span=(0.01, 1.0))
        for kind in ("velocity", "noise", "data")
    ]
    for other in runs[1:]:
        torch.testing.assert_close(other, runs[0], rtol=1e-8, atol=1e-8)


def test_extra_draws_reduce_the_spread():
    """Averaging the denoiser over noise draws (the paper's 5) gives a smoother estimate:
    the samples spread less around their mean."""
    problem = mixture_problem("mask", d=8, seed=3)
    spread = {}
    for samples in (1, 4):
        x = problem.solve([PnPFlow(measurement=problem.measurement, samples=samples)], n=300)
        spread[samples] = float((x - x.mean(0)).square().sum(1).mean())
    assert spread[4] < spread[1], spread


def test_normalized_lr_is_in_units_of_the_lipschitz_constant():
    """Block means of 4 (A A^T = I / 4): lr 0.5 in units of 1 / L is lr 2."""
    problem = mixture_problem("downsample", d=8, seed=3)
    m = problem.measurement
    runs = [
        problem.solve([PnPFlow(measurement=m, lr=0.5, normalize=True)], n=100, nfe=20),
        problem.solve([PnPFlow(measurement=m, lr=2.0)], n=100, nfe=20),
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-9, atol=1e-9)
