"""Solvers: stateless steppers the driver `flowforge.sample` runs over a time grid."""

from flowforge.solvers.base import (
    ODE,
    SDE,
    Adaptive,
    AdaptiveOutcome,
    Discrete,
    Multistep,
    Solver,
    StepInfo,
    steps_from_nfe,
)
from flowforge.solvers.euler import Euler
from flowforge.solvers.explicit_rk import ExplicitRK
from flowforge.solvers.heun import Heun
from flowforge.solvers.midpoint import Midpoint
from flowforge.solvers.rk4 import RK4

__all__ = [
    "ODE",
    "RK4",
    "SDE",
    "Adaptive",
    "AdaptiveOutcome",
    "Discrete",
    "Euler",
    "ExplicitRK",
    "Heun",
    "Midpoint",
    "Multistep",
    "Solver",
    "StepInfo",
    "steps_from_nfe",
]
