"""Metrics: numbers that judge a trained model from its samples, the held-out data and the field."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.data.base import Dataset
from flowforge.data.standardize import Standardizer
from flowforge.paths.base import AffinePath


@dataclass(frozen=True)
class MetricContext:
    """Everything a metric may use. Samples and test data are in data units.

    `samples (N, *data_shape)` generated; `test (M, *data_shape)` held out; `field(x_t, t)` the
    trained (EMA) model in standardised space, making `prediction`s for `path`; `standardizer`
    maps data units to that space; `t_span` the sampling interval (None: the path's);
    `generator` seeds any randomness of the metric.
    """

    samples: Tensor
    test: Tensor
    dataset: Dataset
    field: Callable[[Tensor, Tensor], Tensor]
    path: AffinePath
    prediction: str
    standardizer: Standardizer
    generator: torch.Generator
    device: torch.device
    t_span: tuple[float, float] | None = None


class Metric(abc.ABC):
    """Base of all metrics: `compute(ctx)` returns named floats (several related values allowed).

    >>> metric = registry.create("metric", "sliced_wasserstein", n_projections=256)
    >>> metric.compute(ctx)   # {'sliced_wasserstein': 0.031, 'sliced_wasserstein_baseline': ...}
    """

    @abc.abstractmethod
    def compute(self, ctx: MetricContext) -> dict[str, float]:
        """Evaluate on `ctx`; keys are prefixed with the metric's name."""
