"""Metrics computed on generated samples, held-out data and the trained field."""

from flowforge.metrics.base import Metric, MetricContext
from flowforge.metrics.nll import NLL
from flowforge.metrics.sliced_wasserstein import (
    SlicedWasserstein,
    sliced_wasserstein,
    wasserstein_1d_squared,
)

__all__ = [
    "NLL",
    "Metric",
    "MetricContext",
    "SlicedWasserstein",
    "sliced_wasserstein",
    "wasserstein_1d_squared",
]
