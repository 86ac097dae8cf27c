"""Couplings: how a training batch pairs noise with data (kind `coupling`)."""

from flowforge.training.couplings.assignment import assignment
from flowforge.training.couplings.base import Coupled, Coupling, squared_distances
from flowforge.training.couplings.class_conditional import ClassConditionalOT
from flowforge.training.couplings.exact_ot import ExactOT
from flowforge.training.couplings.independent import Independent
from flowforge.training.couplings.sinkhorn import Sinkhorn, partners, sinkhorn_log_plan
from flowforge.training.couplings.wcfm import WeightedCFM

__all__ = [
    "ClassConditionalOT",
    "Coupled",
    "Coupling",
    "ExactOT",
    "Independent",
    "Sinkhorn",
    "WeightedCFM",
    "assignment",
    "partners",
    "sinkhorn_log_plan",
    "squared_distances",
]
