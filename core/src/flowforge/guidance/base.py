"""Guidance: hooks that steer a solve without changing the solver.

Hook points, applied by the driver in list order:
- `on_prediction(pred, dynamics)`: change the model's prediction (CFG, classifier, DPS, PiGDM,
  self-guidance), at every model evaluation of the solver;
- `after_step(x, t, dynamics)`: change the state after each solver step (data consistency:
  DDNM, DDS, FlowChef; RED-diff's variational update);
- `on_population(x, log_weights, t, dynamics)`: reweight and resample the batch as a particle
  population after each step (SMC). The driver carries `log_weights (B,)` from step to step,
  starting at 0.

`dynamics` (`flowforge.field.Dynamics`) is the solve's context: the path, the solve's condition,
the latest prediction, the step under way with the generator, and per-solve scratch memory.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from flowforge.field import Prediction


class Guidance:
    """Base of all guidance methods; the default hooks leave everything unchanged.

    Subclasses override the hooks they use and document their formula, paper and parameter
    ranges. `requires_grad`: the hooks differentiate through the model (the driver then tracks
    gradients from `x_t`). `needs`: inputs still to be given before a solve (e.g. a measurement
    that a spec's task binds); the driver refuses to start while any is missing.
    """

    requires_grad: bool = False

    @property
    def needs(self) -> tuple[str, ...]:
        """Names of the inputs this guidance still lacks (empty when it is ready to run)."""
        return ()

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
