"""Core's own components, registered through the same hooks as any external plugin."""

from __future__ import annotations

from flowforge.data import GaussianMixture2D, TwoMoons
from flowforge.hookspecs import hookimpl
from flowforge.metrics import NLL, SlicedWasserstein
from flowforge.models import MLPParams, build_mlp
from flowforge.operators import Identity
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
from flowforge.tasks import Generate


@hookimpl
def register_paths(register):
    register("cond_ot", CondOT)
    register("vp_cosine", VPCosine)
    register("vp_linear", VPLinear)
    register("ve", VE)
    register("edm", EDM)


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


@hookimpl
def register_operators(register):
    register("identity", Identity)


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
    register("generate", Generate)
