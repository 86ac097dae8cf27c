"""Guidance: hooks that steer a solve without changing the solver.

Hook points, applied by the driver in list order:
- `on_prediction(pred, dynamics)`: change the model's prediction (CFG, classifier, DPS, PiGDM, ...);
- `after_step(x, t, dynamics)`: change the state after each solver step (data consistency);
- `on_population(x, log_weights, t, dynamics)`: reweight/resample a particle population (SMC).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from flowforge.field import Prediction


class Guidance:
    """Base of all guidance methods; the default hooks leave everything unchanged.

    Subclasses override the hooks they use and document their formula, paper and parameter ranges.
    """

    requires_grad: bool = False

    def on_prediction(self, pred: Prediction, dynamics: Any) -> Prediction:
        """Return the (possibly changed) prediction at `(pred.x_t, pred.t)`."""
        return pred

    def after_step(self, x: Tensor, t: Tensor, dynamics: Any) -> Tensor:
        """Return the state after a solver step that ended at `t (B,)`."""
        return x

    def on_population(
        self, x: Tensor, log_weights: Tensor, t: Tensor, dynamics: Any
    ) -> tuple[Tensor, Tensor]:
        """Return `(particles, log_weights)` after reweighting or resampling."""
        return x, log_weights
