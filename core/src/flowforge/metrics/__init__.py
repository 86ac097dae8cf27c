"""Metrics computed on generated samples, held-out data and the trained field."""

from flowforge.metrics.base import Metric, MetricContext
from flowforge.metrics.nll import NLL
from flowforge.metrics.sliced_wasserstein import (
    SlicedWasserstein,
    sliced_wasserstein,
    wasserstein_1d_squared,
)
from flowforge.metrics.straightness import trajectory_curvature

__all__ = [
    "NLL",
    "Metric",
    "MetricContext",
    "SlicedWasserstein",
    "sliced_wasserstein",
    "trajectory_curvature",
    "wasserstein_1d_squared",
]
