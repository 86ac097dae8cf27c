"""Guidance for discrete samplers: hooks on log-probabilities, on the start state and on a step.

Hook points, applied by `flowforge.discrete.sample` in list order:
- `prepare(x, dynamics)`: the initial state, and which positions are frozen (infilling);
- `on_log_probs(log_p, x_t, t, cond, dynamics)`: change `log p(x_1 | x_t)` (CFG on logits);
- `around_step(advance, x, t0, t1, dynamics)`: run the solver's step (`advance(x)`, as often as
  needed) and choose the next state (soft value-based decoding).

They are registered as guidance (kind `guidance`) but steer discrete solves only: a continuous
solve refuses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Prediction
from flowforge.guidance.base import Guidance
from flowforge.solvers.base import Discrete


class DiscreteGuidance(Guidance, Discrete):
    """Base of discrete guidance; every hook defaults to leaving the solve unchanged."""

    def prepare(self, x: Tensor, dynamics: Any) -> Tensor:
        """The initial state `(B, L)`; may set `dynamics.frozen`."""
        return x

    def on_log_probs(
        self, log_p: Tensor, x_t: Tensor, t: Tensor, cond: Mapping[str, Any], dynamics: Any
    ) -> Tensor:
        """`(B, L, V)` log-probabilities of the clean token at `(x_t, t)` (rows of the call)."""
        return log_p

    def around_step(
        self, advance: Callable[[Tensor], Tensor], x: Tensor, t0: Tensor, t1: Tensor, dynamics: Any
    ) -> Tensor:
        """The state after the step from `t0` to `t1`; `advance(x)` runs one solver step."""
        return advance(x)

    def on_prediction(self, pred: Prediction, dynamics: Any) -> Prediction:
        raise InvalidArgumentError(
            f"guidance {type(self).__name__} steers discrete samplers "
            "(flowforge.discrete.sample), not continuous solves"
        )
