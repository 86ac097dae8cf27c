"""Time samplers: how training draws `t`, each with an exact density (kind `time_sampler`)."""

from flowforge.training.time_samplers.base import TimeSampler, UnitIntervalSampler
from flowforge.training.time_samplers.draws import Draws, unit_draws
from flowforge.training.time_samplers.logit_normal import LogitNormal
from flowforge.training.time_samplers.lognormal import LogNormal
from flowforge.training.time_samplers.u_shaped import UShaped
from flowforge.training.time_samplers.uniform import Uniform

__all__ = [
    "Draws",
    "LogNormal",
    "LogitNormal",
    "TimeSampler",
    "UShaped",
    "Uniform",
    "UnitIntervalSampler",
    "unit_draws",
]
