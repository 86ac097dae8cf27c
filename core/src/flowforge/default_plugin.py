"""Core's own components, registered through the same hooks as any external plugin."""

from __future__ import annotations

from flowforge.hookspecs import hookimpl
from flowforge.operators import Identity
from flowforge.paths import EDM, VE, CondOT, VPCosine, VPLinear
from flowforge.solvers import RK4, Euler, Heun, Midpoint


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


@hookimpl
def register_operators(register):
    register("identity", Identity)
