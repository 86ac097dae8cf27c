"""Classifier (reward) guidance: a differentiable log-likelihood's gradient steers the score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.base import Guidance
from flowforge.guidance.score import add_score, state_gradient

LogLikelihood = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Classifier(Guidance):
    """Classifier guidance (Dhariwal & Nichol 2021) for any differentiable log-likelihood or
    reward. Hook: on the prediction.

        score <- score + w * grad_{x_t} log_likelihood(z, t),
        z = D(x_t)  (on="data": through the network, as in universal guidance, Bansal et al. 2023)
        z = x_t     (on="state": a time-aware classifier of noisy states, Dhariwal & Nichol)

    `log_likelihood(z (B, ...), t (B,)) -> (B,)`, e.g. `log_softmax(classifier(z))[:, label]` or
    a reward; the gradient of the sum over the batch is taken, so samples must not interact.

    Parameters: `scale` w >= 0 (0: off; 1: the Bayes posterior if the log-likelihood is exact;
    larger values sharpen it); `on` "data" or "state".

    >>> g = Classifier(scale=2.0, log_likelihood=lambda x, t: -((x - target) ** 2).sum(1))
    """

    scale: Annotated[float, Field(ge=0, description="guidance weight w (1: exact posterior)")] = 1.0
    on: Annotated[
        Literal["data", "state"],
        Field(description="differentiate log p(c | D(x_t)) (data) or log p(c | x_t, t) (state)"),
    ] = "data"
    log_likelihood: SkipJsonSchema[LogLikelihood | None] = None

    requires_grad = True
    name = "classifier"

    @property
    def needs(self) -> tuple[str, ...]:
        return ("log_likelihood",) if self.log_likelihood is None else ()

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        if self.log_likelihood is None:
            raise InvalidArgumentError(
                "classifier guidance has no log_likelihood: pass log_likelihood=fn with "
                "fn(z (B, ...), t (B,)) -> (B,) differentiable"
            )
        if self.scale == 0:
            return pred
        z = pred.data if self.on == "data" else pred.x_t
        value = self.log_likelihood(z, pred.t)
        if not isinstance(value, Tensor) or value.shape != (z.shape[0],):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InvalidArgumentError(
                f"classifier: log_likelihood must return one value per sample, shape "
                f"({z.shape[0]},), got {got}"
            )
        return add_score(pred, self.scale * state_gradient(pred, value, self.name))
