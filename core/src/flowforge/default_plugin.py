"""Core's own components, registered through the same hooks as any external plugin."""

from __future__ import annotations

from flowforge.data import GaussianMixture2D, TwoMoons
from flowforge.discrete import (
    SVDD,
    Ancestral,
    CTMCEuler,
    DiscreteCFG,
    Infill,
    MaskedPath,
    MDLMCached,
    TauLeaping,
    UniformPath,
)
from flowforge.guidance import (
    CFG,
    DDNM,
    DDS,
    DPS,
    SMC,
    Classifier,
    FlowChef,
    PiGDM,
    PnPFlow,
    REDDiff,
    SelfGuidance,
)
from flowforge.hookspecs import hookimpl
from flowforge.metrics import NLL, SlicedWasserstein
from flowforge.models import MLPParams, build_mlp
from flowforge.operators import Identity
from flowforge.operators.blur import BlurParams, build_blur
from flowforge.operators.compose import ComposeParams, build_compose
from flowforge.operators.dense import DenseParams, build_dense
from flowforge.operators.downsample import DownsampleParams, build_downsample
from flowforge.operators.mask import MaskParams, build_mask
from flowforge.operators.mri import MRIParams, build_mri
from flowforge.paths import EDM, VE, CondOT, VPCosine, VPLinear
from flowforge.solvers import RK4, Euler, Heun, Midpoint
from flowforge.solvers.bdia import BDIA
from flowforge.solvers.ddim import DDIM
from flowforge.solvers.deis import DEIS
from flowforge.solvers.dopri5 import Dopri5
from flowforge.solvers.dpm_solver import DPMSolver
from flowforge.solvers.dpm_solver_pp import DPMSolverPP
from flowforge.solvers.dpm_solver_pp_sde import DPMSolverPPSDE
from flowforge.solvers.euler_maruyama import EulerMaruyama
from flowforge.solvers.ipndm import IPNDM
from flowforge.solvers.momentum import GeneralizedHeavyBall, HeavyBall
from flowforge.solvers.predictor_corrector import PredictorCorrector
from flowforge.solvers.reverse_sde import ReverseSDE
from flowforge.solvers.unipc import UniPC
from flowforge.tasks import Generate, InverseProblem
from flowforge.training.couplings import (
    ClassConditionalOT,
    ExactOT,
    Independent,
    Sinkhorn,
    WeightedCFM,
)
from flowforge.training.time_samplers import LogitNormal, LogNormal, Uniform, UShaped


@hookimpl
def register_paths(register):
    register("cond_ot", CondOT)
    register("vp_cosine", VPCosine)
    register("vp_linear", VPLinear)
    register("ve", VE)
    register("edm", EDM)
    register("masked", MaskedPath, summary="Absorbing (masked) discrete diffusion on tokens")
    register("uniform", UniformPath, summary="Uniform discrete diffusion on tokens")


@hookimpl
def register_solvers(register):
    register("euler", Euler)
    register("heun", Heun)
    register("midpoint", Midpoint)
    register("rk4", RK4)
    register("ddim", DDIM)
    register("dpm_solver", DPMSolver)
    register("dpm_solver_pp", DPMSolverPP)
    register("unipc", UniPC)
    register("deis", DEIS)
    register("ipndm", IPNDM)
    register("dpm_solver_pp_hb", HeavyBall)
    register("dpm_solver_pp_ghb", GeneralizedHeavyBall)
    register("dopri5", Dopri5)
    register("bdia", BDIA)
    register("reverse_sde", ReverseSDE)
    register("euler_maruyama", EulerMaruyama)
    register("dpm_solver_pp_sde", DPMSolverPPSDE)
    register("predictor_corrector", PredictorCorrector)
    register("ancestral", Ancestral, summary="Discrete: exact posterior (Tweedie) steps")
    register("mdlm_cached", MDLMCached, summary="Discrete: ancestral with the RADD/MDLM cache")
    register("tau_leaping", TauLeaping, summary="Discrete: tau-leaping of the reverse CTMC")
    register("ctmc_euler", CTMCEuler, summary="Discrete: Euler steps of the reverse CTMC")


@hookimpl
def register_guidance(register):
    register("cfg", CFG, summary="Classifier-free guidance, with interval and rescale")
    register("classifier", Classifier, summary="Gradient of a differentiable log-likelihood")
    register("self_guidance", SelfGuidance, summary="TSDiff: loss on observed entries")
    register("dps", DPS, summary="Diffusion posterior sampling (Chung et al. 2023)")
    register("pigdm", PiGDM, summary="Pseudoinverse-guided posterior sampling (Song et al. 2023)")
    register("ddnm", DDNM, summary="Null-space projection, DDNM+ when noisy (Wang et al. 2023)")
    register("dds", DDS, summary="Conjugate gradients on the data estimate (Chung et al. 2024)")
    register("red_diff", REDDiff, summary="Variational posterior mean (Mardani et al. 2023)")
    register("flowchef", FlowChef, summary="Gradient-free steering of a flow (Patel et al. 2024)")
    register("pnp_flow", PnPFlow, summary="Plug-and-play, flow as denoiser (Martin et al. 2025)")
    register("smc", SMC, summary="Twisted SMC corrector, exact as particles grow")
    register("discrete_cfg", DiscreteCFG, summary="Discrete: classifier-free guidance on logits")
    register("svdd", SVDD, summary="Discrete: soft value-based decoding with a reward")
    register("infill", Infill, summary="Discrete: clamped tokens (prefix, suffix, any positions)")


@hookimpl
def register_operators(register):
    register("identity", Identity)
    register("mask", build_mask, params=MaskParams, summary="Inpainting: observe masked entries")
    register("blur", build_blur, params=BlurParams, summary="Gaussian blur, circular, by FFT")
    register(
        "downsample",
        build_downsample,
        params=DownsampleParams,
        summary="Super-resolution: block averages",
    )
    register("mri", build_mri, params=MRIParams, summary="Single-coil MRI: subsampled FFT")
    register("dense", build_dense, params=DenseParams, summary="Random Gaussian matrix")
    register("compose", build_compose, params=ComposeParams, summary="Operators in sequence")


@hookimpl
def register_datasets(register):
    register("two_moons", TwoMoons)
    register("gaussian_mixture_2d", GaussianMixture2D)


@hookimpl
def register_models(register):
    register("mlp", build_mlp, params=MLPParams, summary="Time-conditioned MLP for vector data")


@hookimpl
def register_metrics(register):
    register("sliced_wasserstein", SlicedWasserstein)
    register("nll", NLL)


@hookimpl
def register_tasks(register):
    register("generate", Generate, summary="Train a prior, sample it, evaluate the samples")
    register(
        "inverse_problem",
        InverseProblem,
        summary="Posterior samples, mean and std for y = A x + noise, with metrics",
    )


@hookimpl
def register_time_samplers(register):
    register("uniform", Uniform)
    register("logit_normal", LogitNormal)
    register("u_shaped", UShaped)
    register("lognormal", LogNormal)


@hookimpl
def register_couplings(register):
    register("independent", Independent, summary="Noise and data drawn independently")
    register("exact_ot", ExactOT, summary="Minibatch exact OT: optimal assignment (CPU, scipy)")
    register("sinkhorn", Sinkhorn, summary="Minibatch entropic OT: log-domain Sinkhorn on device")
    register(
        "class_conditional",
        ClassConditionalOT,
        summary="Minibatch exact OT within each class label",
    )
    register("wcfm", WeightedCFM, summary="Weighted CFM: Gibbs-kernel weights on independent pairs")
