"""The anchor samplers (diffusers, k-diffusion, flow_matching, torchdiffeq) on the exact mixture.

Each `Anchor` runs one library's sampler at a budget of field evaluations and exposes the time
grid it used, so the flowforge solver of the same method can run on exactly that grid from
exactly that start. Conventions (see `_common` and ../shared/benchmarks/anchors-solvers-A.md):

- diffusers VP schedulers: Stable Diffusion's scaled-linear betas (sigma_max = 14.61); start
  `x_vp = z` (init_noise_sigma = 1); the exact epsilon is evaluated at the scheduler's own sigma
  (not at the rounded integer timestep it passes to the model).
- k-diffusion: Karras sigmas (rho = 7) from 14.61 to 0.0292, then 0; start `x_ve = 14.61 z`.
- flow_matching / diffusers flow-match / torchdiffeq: rectified flow from pure noise, t in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from _common import (
    VP,
    VP_SIGMA_MAX,
    VP_SIGMA_MIN,
    Counted,
    light_k_diffusion,
    t_of_sigma,
    vp_scale,
)
from torch import Tensor

from flowforge.paths import CondOT
from flowforge.paths.base import AffinePath
from flowforge.targets import GaussianMixture

COND_OT = CondOT()
SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


@dataclass(frozen=True)
class KarrasVE(AffinePath):
    """`alpha = 1`, `sigma = sigma_max (1 - t)`: k-diffusion's coordinates (x_ve, sigma).

    A step in t on this path is a step in sigma, so flowforge's `euler`/`heun` on it are the
    same arithmetic as k-diffusion's `sample_euler`/`sample_heun`: the same method on the same
    grid in the same coordinates.
    """

    sigma_max: float = VP_SIGMA_MAX

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_max * (1.0 - t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -self.sigma_max)

    def t_from_log_snr(self, log_snr: Tensor) -> Tensor:
        return 1.0 - torch.exp(-0.5 * log_snr) / self.sigma_max


KARRAS_VE = KarrasVE()


@dataclass(frozen=True)
class Start:
    """A start state `x (B, d)` in vp_cosine coordinates at time `t`, and its name."""

    name: str
    x: Tensor
    t: float


def starts(z: Tensor) -> dict[str, Start]:
    """Pure noise (t = 0), the diffusers VP start and the k-diffusion VE start, from noises `z`."""
    t_max = float(t_of_sigma(VP_SIGMA_MAX))
    return {
        "noise": Start("noise", z, 0.0),
        "vp": Start("vp", z, t_max),
        "ve": Start("ve", z * VP_SIGMA_MAX * vp_scale(VP_SIGMA_MAX), t_max),
    }


@dataclass(frozen=True)
class Anchor:
    """One anchor sampler.

    `run(gm, z, steps) -> (x_end, nfe)`: from the standard noises `z` (the anchor applies its own
    start convention, which `starts(z)[start]` reproduces for the reference), the end state in
    vp_cosine coordinates and the counted field calls. `grid(steps) -> (path, times)`: a
    flowforge path in the anchor's coordinates (vp_cosine for diffusers' VP schedulers,
    `KARRAS_VE` for k-diffusion, cond_ot for rectified flow) and the `(steps + 1,)` times the
    anchor stepped through, so a flowforge solver can take the same steps. `steps(budget)`: how
    many steps fit in a budget of evaluations.
    """

    name: str
    library: str
    start: str
    run: Callable[[GaussianMixture, Tensor, int], tuple[Tensor, int]]
    grid: Callable[[int], tuple[AffinePath, Tensor]]
    steps: Callable[[int], int]


def _eps(gm: GaussianMixture, x_vp: Tensor, sigma: Tensor) -> Tensor:
    t = t_of_sigma(sigma).expand(x_vp.shape[0])
    return gm.predict(x_vp, t, VP, "noise")


def _diffusers(name: str, cls_name: str, **kwargs) -> Anchor:
    """A diffusers VP scheduler driven by the exact epsilon at its own sigma."""
    import diffusers

    def make(steps: int):
        sched = getattr(diffusers, cls_name)(**SD_BETAS, **kwargs)
        sched.set_timesteps(steps)
        return sched

    def sigmas(sched) -> Tensor:
        if hasattr(sched, "sigmas") and sched.sigmas is not None:
            return sched.sigmas.to(torch.float64)
        return ddim_sigmas(sched)

    def run(gm: GaussianMixture, z: Tensor, steps: int) -> tuple[Tensor, int]:
        sched = make(steps)
        sig = sigmas(sched)
        field = Counted(lambda x, s: _eps(gm, x, s))
        x = z * sched.init_noise_sigma
        for i, ts in enumerate(sched.timesteps):
            x = sched.step(field(x, sig[i]), ts, x).prev_sample
        return x, field.calls

    def grid(steps: int) -> tuple[AffinePath, Tensor]:
        return VP, t_of_sigma(sigmas(make(steps)))

    return Anchor(name, "diffusers", "vp", run, grid, lambda b: b)


def ddim_sigmas(sched) -> Tensor:
    """The noise levels diffusers' DDIMScheduler steps through: its timesteps, then where its
    last step lands.

    DDIM steps from timestep t to `t - 1000 // steps`, the next timestep only when `steps`
    divides 1000. Otherwise ("trailing" spacing at 3, 6 or 15 steps) the state lands a timestep
    off the next one, which the next step then takes it to be at (a relabelling no grid can
    express: 1e-3 in the end state at 6 and 15 steps on config B), and at 6 and 15 steps the last
    step lands on timestep 0 (sigma_min = 0.029), not on `final_alpha_cumprod` (alpha = 1): the
    solve ends short of the data, and is compared with the exact state there.
    """
    ab = sched.alphas_cumprod.to(torch.float64)
    ts = sched.timesteps
    last = int(ts[-1]) - sched.config.num_train_timesteps // sched.num_inference_steps
    end = ab[last] if last >= 0 else sched.final_alpha_cumprod.to(torch.float64)
    ab = torch.cat([ab[ts], end.reshape(1)])
    return ((1 - ab) / ab).sqrt()


def _flow_match(name: str, cls_name: str, per_step: int) -> Anchor:
    """diffusers' rectified-flow schedulers (sigma = 1 - t, model returns noise - data)."""
    import diffusers

    def make(steps: int):
        sched = getattr(diffusers, cls_name)()
        sched.set_timesteps(steps)
        return sched

    def run(gm: GaussianMixture, z: Tensor, steps: int) -> tuple[Tensor, int]:
        sched = make(steps)
        field = Counted(
            lambda x, s: -gm.predict(x, (1 - s).expand(x.shape[0]), COND_OT, "velocity")
        )
        x = z
        for ts in sched.timesteps:
            s = sched.sigmas[sched.step_index if sched.step_index is not None else 0]
            x = sched.step(field(x, s.to(torch.float64)), ts, x).prev_sample
        return x, field.calls

    def grid(steps: int) -> tuple[AffinePath, Tensor]:
        return COND_OT, 1 - make(steps).sigmas.to(torch.float64)

    return Anchor(name, "diffusers", "noise", run, grid, lambda b: (b + per_step - 1) // per_step)


def _k(name: str, fn: str, per_step: int, extra: int = 0, **kwargs) -> Anchor:
    """A k-diffusion sampler on Karras sigmas with the exact denoiser."""

    def sigmas(steps: int) -> Tensor:
        # k-diffusion builds the schedule in the default dtype: make it float64 like the rest.
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return light_k_diffusion().get_sigmas_karras(steps, VP_SIGMA_MIN, VP_SIGMA_MAX)
        finally:
            torch.set_default_dtype(default)

    def run(gm: GaussianMixture, z: Tensor, steps: int) -> tuple[Tensor, int]:
        k = light_k_diffusion()

        def denoiser(x: Tensor, sigma: Tensor) -> Tensor:
            scale = vp_scale(sigma)[:, None]
            return gm.predict(x * scale, t_of_sigma(sigma), VP, "data")

        field = Counted(denoiser)
        s = sigmas(steps)
        x = getattr(k, fn)(field, z * VP_SIGMA_MAX, s, disable=True, **kwargs)
        return x * vp_scale(s[-1]), field.calls

    def grid(steps: int) -> tuple[AffinePath, Tensor]:
        return KARRAS_VE, 1.0 - sigmas(steps) / VP_SIGMA_MAX

    return Anchor(name, "k-diffusion", "ve", run, grid, lambda b: (b - extra) // per_step)


def _fm(name: str, method: str, per_step: int) -> Anchor:
    """flow_matching's ODESolver (torchdiffeq fixed grid) on rectified flow from pure noise."""

    def run(gm: GaussianMixture, z: Tensor, steps: int) -> tuple[Tensor, int]:
        from flow_matching.solver import ODESolver

        def velocity(x: Tensor, t: Tensor, **_) -> Tensor:
            return gm.predict(x, t.to(x).expand(x.shape[0]), COND_OT, "velocity")

        field = Counted(velocity)
        grid_t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
        x = ODESolver(velocity_model=field).sample(
            x_init=z, step_size=None, method=method, time_grid=grid_t
        )
        return x, field.calls

    def grid(steps: int) -> tuple[AffinePath, Tensor]:
        return COND_OT, torch.linspace(0, 1, steps + 1, dtype=torch.float64)

    return Anchor(name, "flow_matching", "noise", run, grid, lambda b: b // per_step)


def all_anchors() -> list[Anchor]:
    """Every anchor the benchmark runs, in table order."""
    return [
        _diffusers("diffusers.DDIM", "DDIMScheduler", timestep_spacing="trailing",
                   set_alpha_to_one=True, clip_sample=False),
        _diffusers("diffusers.DPM++2M-Karras", "DPMSolverMultistepScheduler",
                   use_karras_sigmas=True),
        _diffusers("diffusers.DPM++3M-Karras", "DPMSolverMultistepScheduler",
                   use_karras_sigmas=True, solver_order=3),
        _diffusers("diffusers.DPM-Solver-2S-Karras†", "DPMSolverSinglestepScheduler",
                   use_karras_sigmas=True, algorithm_type="dpmsolver",
                   final_sigmas_type="sigma_min"),
        _diffusers("diffusers.UniPC-bh2-Karras", "UniPCMultistepScheduler",
                   use_karras_sigmas=True, solver_type="bh2"),
        _diffusers("diffusers.DEIS-2-Karras†", "DEISMultistepScheduler", use_karras_sigmas=True),
        _flow_match("diffusers.FlowMatchEuler", "FlowMatchEulerDiscreteScheduler", 1),
        _k("k.euler", "sample_euler", 1),
        _k("k.heun", "sample_heun", 2, extra=-1),
        _k("k.lms", "sample_lms", 1),
        _k("k.dpmpp_2m", "sample_dpmpp_2m", 1),
        _k("k.dpmpp_3m_sde(eta=0)", "sample_dpmpp_3m_sde", 1, eta=0.0),
        _fm("fm.euler", "euler", 1),
        _fm("fm.midpoint", "midpoint", 2),
        _fm("fm.rk4", "rk4", 4),
    ]  # fmt: skip


# flowforge solver -> anchors implementing the same method (same steps, same grid, same start).
# The reference-faithful variants (`variable="lambda"`, ipndm's "rho") reproduce the anchor they
# are paired with; the defaults implement the same method with flowforge's own arithmetic.
COUNTERPARTS = {  # flowforge solver label (benchmarks/_common.py) -> anchors of the same method
    "euler": ["fm.euler", "diffusers.FlowMatchEuler", "k.euler"],
    "heun": ["k.heun"],
    "midpoint": ["fm.midpoint"],
    "rk4": ["fm.rk4"],
    "ddim": ["diffusers.DDIM"],
    "dpm_solver[order=2]": ["diffusers.DPM-Solver-2S-Karras†"],
    "dpm_solver_pp": ["diffusers.DPM++2M-Karras", "k.dpmpp_2m"],
    "dpm_solver_pp[variable=lambda]": ["diffusers.DPM++2M-Karras", "k.dpmpp_2m"],
    "dpm_solver_pp[order=3]": ["diffusers.DPM++3M-Karras", "k.dpmpp_3m_sde(eta=0)"],
    "dpm_solver_pp[order=3,variable=lambda]": ["diffusers.DPM++3M-Karras"],
    "dpm_solver_pp[order=3,variable=lambda,reference=k-diffusion]": ["k.dpmpp_3m_sde(eta=0)"],
    "unipc": ["diffusers.UniPC-bh2-Karras"],
    "unipc[variable=lambda]": ["diffusers.UniPC-bh2-Karras"],
    "deis[order=2]": ["diffusers.DEIS-2-Karras†"],
    "deis[order=2,variable=lambda]": ["diffusers.DEIS-2-Karras†"],
    "ipndm": ["k.lms"],
    "ipndm[variable=rho]": ["k.lms"],
}
