"""Self-guidance (TSDiff): condition an unconditional model on observed entries of the state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field, InstanceOf
from pydantic.json_schema import SkipJsonSchema
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.base import Guidance
from flowforge.guidance.score import add_score, state_gradient
from flowforge.tensors import matching


@dataclass(frozen=True)
class SelfGuidance(Guidance):
    """TSDiff self-guidance (Kollovieh et al. 2023, sec. 4.1). Hook: on the prediction.

    With the one-step data estimate `D(x_t)` and observed values `y` where `mask` is True:

        log p(y | x_t) ~ -w * sum_obs L(y - D(x_t)),   score <- score + grad_{x_t} log p(y | x_t)

    `L(r) = r^2` ("squared": a Gaussian observation model, w = 1 / (2 noise_var)) or the pinball
    loss `max(q r, (q - 1) r)` ("quantile": an asymmetric Laplace model at quantile q; TSDiff's
    choice for probabilistic forecasting). The gradient runs through the network.

    Parameters: `scale` w >= 0; `loss`; `quantile` q in (0, 1). `observed (B or 1, ...)` and
    `mask` (broadcastable to the state, True = observed) are given in Python.

    >>> g = SelfGuidance(scale=50.0, observed=history, mask=history_mask)
    """

    scale: Annotated[float, Field(ge=0, description="w: weight of the observation loss")] = 1.0
    loss: Annotated[
        Literal["squared", "quantile"], Field(description="squared error or pinball loss")
    ] = "squared"
    quantile: Annotated[float, Field(gt=0, lt=1, description="q of the pinball loss")] = 0.5
    observed: SkipJsonSchema[InstanceOf[Tensor] | None] = None
    mask: SkipJsonSchema[InstanceOf[Tensor] | None] = None

    requires_grad = True
    name = "self_guidance"

    def __post_init__(self) -> None:
        if self.mask is not None and self.mask.dtype != torch.bool:
            raise InvalidArgumentError(
                f"self_guidance.mask must be a boolean tensor (True = observed), got "
                f"{self.mask.dtype}; pass mask.bool()"
            )

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(n for n in ("observed", "mask") if getattr(self, n) is None)

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        if self.needs:
            raise InvalidArgumentError(
                f"self_guidance has no {' and no '.join(self.needs)}: pass observed=values "
                "(B or 1, ...) and mask=bool tensor (True = observed), broadcastable to the state"
            )
        if self.scale == 0:
            return pred
        y = matching(self.observed, pred.value)
        mask = self.mask if self.mask.device == y.device else self.mask.to(y.device)
        r = torch.where(mask, y - pred.data, torch.zeros_like(y))
        if self.loss == "squared":
            penalty = r.square()
        else:
            penalty = torch.maximum(self.quantile * r, (self.quantile - 1) * r)
        objective = -self.scale * penalty.flatten(1).sum(1)
        return add_score(pred, state_gradient(pred, objective, self.name))
