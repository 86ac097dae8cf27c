"""Probability paths (t=0 noise, t=1 data) and conversions between prediction kinds."""

from flowforge.paths.base import PREDICTIONS, AffinePath, Path, PathSample, check_prediction
from flowforge.paths.cond_ot import CondOT
from flowforge.paths.edm import EDM
from flowforge.paths.ve import VE
from flowforge.paths.vp_cosine import VPCosine
from flowforge.paths.vp_linear import VPLinear

__all__ = [
    "EDM",
    "PREDICTIONS",
    "VE",
    "AffinePath",
    "CondOT",
    "Path",
    "PathSample",
    "VPCosine",
    "VPLinear",
    "check_prediction",
]
