"""The reference-faithful variants (`variable="lambda"`, ipndm's `variable="rho"`) against the
implementations they reproduce, run here on the exact field of a Gaussian mixture, and their
observed orders on the grids those implementations are made for.

Each reference is driven as `benchmarks/anchors.py` drives it: diffusers' VP schedulers take the
exact epsilon at their own Karras sigma (a `vp_cosine` state at the same log-SNR) and start from
`x = z`, k-diffusion's samplers take the exact denoiser and start from `x = sigma_max z`. The
libraries are optional (`make bench` installs them): without them these tests skip.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.paths import VPCosine
from flowforge.solvers import Solver
from flowforge.targets import GaussianMixture
from flowforge.testing.convergence import observed_order

# The libraries' own deprecation notices (numpy 2 array protocol, diffusers' scheduler API).
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:diffusers", "ignore::FutureWarning:diffusers"
)
F64 = torch.float64
VP = VPCosine()
GM = GaussianMixture(
    means=[[-1.5, 0.5, 0.2], [1.0, 1.0, -0.3], [0.5, -1.2, 0.4]],
    stds=[0.6, 0.45, 0.7],
    weights=[0.3, 0.3, 0.4],
)
NOISE = torch.randn(6, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
# Stable Diffusion's scaled-linear betas, as in the benchmark's anchors.
BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
SIGMA_MIN, SIGMA_MAX = 0.0292, 14.61
RTOL = 1e-10


def t_of_sigma(sigma: torch.Tensor) -> torch.Tensor:
    """The `vp_cosine` time with sigma/alpha = `sigma` (sigma = 0: the data end t = 1)."""
    sigma = sigma.to(F64)
    return torch.where(sigma > 0, VP.t_from_log_snr(-2.0 * torch.log(sigma)), 1.0)


def ours(solver: Solver, sigmas: torch.Tensor, x_vp: torch.Tensor) -> torch.Tensor:
    """The flowforge solve from the VP state `x_vp` through the noise levels `sigmas`."""
    times = t_of_sigma(sigmas)
    return flowforge.sample(
        GM.field(VP), x_vp, path=VP, prediction="velocity", solver=solver,
        nfe=len(sigmas) - 1, time_grid=times, t_span=(float(times[0]), float(times[-1])),
    )  # fmt: skip


def assert_same(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert bool(torch.isfinite(ref).all()), "the reference itself is not finite"
    diff = float((out - ref).abs().max() / ref.abs().max())
    assert diff < RTOL, f"max relative difference {diff:.2e}"


def diffusers_solve(scheduler: str, steps: int, **config) -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' `scheduler` in float64 from `x = NOISE`: (end state, its sigmas)."""
    diffusers = pytest.importorskip("diffusers")
    sched = getattr(diffusers, scheduler)(**BETAS, **config)
    sched.set_timesteps(steps)
    sched.sigmas = sched.sigmas.to(F64)  # kept in float32 by set_timesteps
    x = NOISE
    for i, timestep in enumerate(sched.timesteps):
        eps = GM.predict(x, t_of_sigma(sched.sigmas[i]).expand(x.shape[0]), VP, "noise")
        x = sched.step(eps, timestep, x).prev_sample
    return x, sched.sigmas


@pytest.fixture(scope="module")
def k_sampling():
    """`k_diffusion.sampling` without the package's training-stack imports (torchvision, ...):
    a bare package whose `utils` holds the one helper the samplers use, as the benchmark does."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion is not installed (make bench installs it)")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, dims: x[(...,) + (None,) * (dims - x.ndim)]
    package.utils = utils
    names = ("k_diffusion", "k_diffusion.utils", "k_diffusion.sampling")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    try:
        yield importlib.import_module("k_diffusion.sampling")
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def k_solve(k, sampler: str, steps: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """k-diffusion's `sampler` on its Karras sigmas (float64) from `x = SIGMA_MAX * NOISE`."""

    def denoiser(x_ve: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        alpha = 1 / torch.sqrt(1 + sigma**2)
        return GM.predict(x_ve * alpha[:, None], t_of_sigma(sigma), VP, "data")

    ramp = torch.linspace(0, 1, steps, dtype=F64)
    lo, hi = SIGMA_MIN ** (1 / 7), SIGMA_MAX ** (1 / 7)
    sigmas = torch.cat([(hi + ramp * (lo - hi)) ** 7, torch.zeros(1, dtype=F64)])
    x = getattr(k, sampler)(denoiser, NOISE * SIGMA_MAX, sigmas, disable=True, **kwargs)
    return x, sigmas


def vp_start() -> torch.Tensor:
    """k-diffusion's VE start as a VP state."""
    return NOISE * SIGMA_MAX / (1 + SIGMA_MAX**2) ** 0.5


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("predictor", [1, 2])
def test_unipc_lambda_is_diffusers_unipc(predictor, variant, steps):
    # diffusers' bh1 is NaN on a last step into sigma = 0 (B(h) = -inf times 0): end at sigma_min.
    final = "sigma_min" if variant == "bh1" else "zero"
    ref, sigmas = diffusers_solve(
        "UniPCMultistepScheduler", steps, use_karras_sigmas=True, solver_order=predictor,
        solver_type=variant, final_sigmas_type=final,
    )  # fmt: skip
    solver = registry.create(
        "solver", "unipc", order=predictor + 1, variant=variant, variable="lambda"
    )
    assert_same(ours(solver, sigmas, NOISE), ref)


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_lambda_without_corrector_is_diffusers_unip(order, steps):
    ref, sigmas = diffusers_solve(
        "UniPCMultistepScheduler", steps, use_karras_sigmas=True, solver_order=order,
        disable_corrector=list(range(steps)),
    )  # fmt: skip
    solver = registry.create("solver", "unipc", order=order, corrector=False, variable="lambda")
    assert_same(ours(solver, sigmas, NOISE), ref)


def test_unipc_bh1_lambda_is_finite_into_sigma_zero():
    """Where diffusers' bh1 gives NaN (its last step into sigma = 0), the step is DDIM's."""
    _, sigmas = diffusers_solve("UniPCMultistepScheduler", 6, use_karras_sigmas=True)
    out = ours(registry.create("solver", "unipc", variant="bh1", variable="lambda"), sigmas, NOISE)
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize("karras", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_deis_lambda_is_diffusers_deis(order, karras, steps):
    """Karras sigmas end with a repeated sigma_min (a zero step), the default ones at sigma_min."""
    ref, sigmas = diffusers_solve(
        "DEISMultistepScheduler", steps, use_karras_sigmas=karras, solver_order=order
    )
    solver = registry.create("solver", "deis", order=order, variable="lambda")
    assert_same(ours(solver, sigmas, NOISE), ref)


class _Float64:
    """`torch` as seen by diffusers' DPM-Solver module, with float32 meaning float64: its `step`
    casts the sample to float32 ("to avoid precision issues"), which would hide the arithmetic
    under float32 rounding."""

    float32 = torch.float64

    def __getattr__(self, name: str):
        return getattr(torch, name)


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize("order", [2, 3])
def test_dpm_solver_pp_lambda_is_diffusers_dpmpp(order, steps, monkeypatch):
    module = pytest.importorskip("diffusers.schedulers.scheduling_dpmsolver_multistep")
    monkeypatch.setattr(module, "torch", _Float64())
    ref, sigmas = diffusers_solve(
        "DPMSolverMultistepScheduler", steps, use_karras_sigmas=True, solver_order=order
    )
    solver = registry.create("solver", "dpm_solver_pp", order=order, variable="lambda")
    assert_same(ours(solver, sigmas, NOISE), ref)


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize(
    ("order", "sampler", "kwargs"),
    [(2, "sample_dpmpp_2m", {}), (3, "sample_dpmpp_3m_sde", {"eta": 0.0})],
)
def test_dpm_solver_pp_lambda_is_k_diffusions_dpmpp(order, sampler, kwargs, steps, k_sampling):
    ref, sigmas = k_solve(k_sampling, sampler, steps, **kwargs)
    solver = registry.create(
        "solver", "dpm_solver_pp", order=order, variable="lambda", reference="k-diffusion"
    )
    assert_same(ours(solver, sigmas, vp_start()), ref)


@pytest.mark.parametrize("steps", [5, 16])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_ipndm_rho_is_k_diffusions_lms(order, steps, k_sampling):
    ref, sigmas = k_solve(k_sampling, "sample_lms", steps, order=order)
    solver = registry.create("solver", "ipndm", order=order, variable="rho")
    assert_same(ours(solver, sigmas, vp_start()), ref)


# (solver, params, observed order claimed, step counts). The references' own setting is a solve
# between finite noise levels on a log-SNR or Karras grid: `vp_linear` (sigma/alpha 152 to 0.01)
# and `edm` (80 to 0.002). From pure noise to the data (`cond_ot`) the step into sigma = 0 is
# first order (dpm_solver_pp, unipc) or extrapolates a polynomial in log rho to rho = 0 (deis);
# these grids keep the last noise level at 0.002 whatever the step count, which leaves an error
# of about 1e-5 there (below the errors of these step counts; the docstrings say so).
VARIANTS = [
    ("dpm_solver_pp", {"order": 2, "variable": "lambda"}, 2, [32, 64, 128, 256]),
    ("dpm_solver_pp", {"order": 3, "variable": "lambda"}, 2, [48, 96, 192, 384]),
    ("unipc", {"order": 3, "variable": "lambda"}, 3, [24, 48, 96, 192]),
    ("unipc", {"order": 3, "variant": "bh1", "variable": "lambda"}, 3, [24, 48, 96, 192]),
    ("unipc", {"order": 2, "variable": "lambda"}, 2, [32, 64, 128, 256]),
    ("unipc", {"order": 3, "corrector": False, "variable": "lambda"}, 3, [24, 48, 96, 192]),
    ("deis", {"order": 2, "variable": "lambda"}, 2, [32, 64, 128, 256]),
    ("deis", {"order": 3, "variable": "lambda"}, 3, [24, 48, 96, 192]),
    ("ipndm", {"order": 3, "variable": "rho"}, 3, [32, 64, 128, 256]),
    ("ipndm", {"order": 4, "variable": "rho"}, 4, [64, 128, 256, 512]),
]
# LMS in rho from pure noise stalls near 1e-5 (the noise form follows x one to one next to
# alpha = 0): the default "natural" variant is the one for pure-noise starts.
FINITE_START_ONLY = {"ipndm"}


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_linear", "edm"])
@pytest.mark.parametrize("time_grid", ["logsnr", "edm"])
@pytest.mark.parametrize(("name", "params", "order", "steps"), VARIANTS, ids=str)
def test_reference_variant_keeps_its_order(name, params, order, steps, time_grid, path_name):
    if path_name == "cond_ot" and name in FINITE_START_ONLY:
        pytest.skip(f"{name}{params} is for solves from finite noise (see FINITE_START_ONLY)")
    solver = registry.create("solver", name, **params)
    slope, errors = observed_order(solver, path_name, steps=steps, time_grid=time_grid)
    assert slope > order - 0.3, f"observed {slope:.2f} on {path_name}/{time_grid}; {errors}"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("dpm_solver_pp", {"order": 3, "variable": "lambda"}),
        ("unipc", {"variable": "lambda"}),
        ("unipc", {"corrector": False, "variable": "lambda"}),
        ("deis", {"variable": "lambda"}),
        ("ipndm", {"variable": "rho"}),
    ],
    ids=str,
)
def test_reference_variant_solves_a_batch_like_single_samples(name, params):
    """Per-sample time spans, from pure noise or not, to the data end or not: the weights and
    the pure-noise rules are per sample."""
    solver = registry.create("solver", name, **params)
    path = registry.create("path", "cond_ot")
    t0 = torch.tensor([0.0, 0.05, 0.0, 0.2], dtype=F64)
    t1 = torch.tensor([1.0, 1.0, 0.9, 0.95], dtype=F64)
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(5))

    def solve(i: slice) -> torch.Tensor:
        return flowforge.sample(
            GM.field(path), x[i], path=path, prediction="velocity", solver=solver, nfe=9,
            t_span=(t0[i], t1[i]),
        )  # fmt: skip

    batch = solve(slice(None))
    assert bool(torch.isfinite(batch).all())
    for i in range(4):
        torch.testing.assert_close(batch[i : i + 1], solve(slice(i, i + 1)), rtol=1e-10, atol=1e-10)
