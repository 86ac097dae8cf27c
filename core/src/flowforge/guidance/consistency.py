"""Data consistency after the step: correct the step's data estimate, move the state with it.

DDNM and DDS are DDIM steps `x' = alpha' D + sigma' eps` in which the data estimate `D` is
replaced by a data-consistent `D'` before the step. After any solver's step the same change is
`x' <- x' + alpha(t') (D' - D)`, with `D` the data prediction of the step's last model
evaluation: exactly the papers' update with `ddim`, the same correction on other solvers' steps.
Where `sigma(t') = 0` the state is its own data estimate (`D = x'`), so the last step makes the
returned sample itself consistent.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.field import Dynamics, Prediction
from flowforge.guidance.measurement import Measurement
from flowforge.guidance.posterior import PosteriorGuidance
from flowforge.tensors import expand_like


def step_data_estimate(x: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
    """The data estimate the step just used: `dynamics.last`'s data prediction, or, outside a
    solve, the model's at `(x, t)`; the state itself where `sigma(t) = 0`."""
    pred = dynamics.last
    if pred is None or pred.x_t.shape != x.shape:
        pred = Prediction(dynamics.network(x, t), dynamics.prediction, x, t, dynamics.path)
    data = pred.data.to(x.dtype)
    at_data = expand_like(dynamics.path.sigma(t) == 0, x)
    return torch.where(at_data, x, data)


@dataclass(frozen=True)
class DataConsistency(PosteriorGuidance):
    """Abstract: a posterior guidance that corrects the data estimate after every step.

    Subclasses give `correct(data, t, measurement, dynamics) -> data'`.
    """

    @abc.abstractmethod
    def correct(self, data: Tensor, t: Tensor, m: Measurement, dynamics: Dynamics) -> Tensor:
        """The data-consistent estimate replacing `data (B, ...)` at the step's end time `t`."""

    def after_step(self, x: Tensor, t: Tensor, dynamics: Dynamics) -> Tensor:
        m = self.given()
        data = step_data_estimate(x, t, dynamics)
        alpha = expand_like(dynamics.path.alpha(t), x).to(x.dtype)
        return x + alpha * (self.correct(data, t, m, dynamics) - data)
