"""Classifier-free guidance with a guidance interval and rescaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.base import Guidance
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class CFG(Guidance):
    """Classifier-free guidance (Ho & Salimans 2022). Hook: on the prediction.

    `c` is the model's prediction under the solve's condition (`flowforge.sample(...,
    cond={"label": y})` calls `field(x_t, t, label=y)`), `u` its prediction under the null
    condition (every conditioning keyword set to None, or `null_cond`):

        out = u + w (c - u)                                  for t in [t_lo, t_hi], else c
        out <- phi * out * std(c) / std(out) + (1 - phi) * out          (rescale phi)

    The first line is the same in every prediction kind (all are affine in each other at fixed
    `(x_t, t)`). The interval (Kynkaenniemi et al. 2024) limits guidance to part of the solve,
    in flowforge's time (0 = noise, 1 = data); the rescale (Lin et al. 2024, sec. 3.4) brings
    the per-sample standard deviation of the model's output back to the conditional one's. Each
    evaluation calls the network twice (`nfe` counts one); at w = 1 only once.

    Parameters: `scale` w >= 0 (1: the conditional model, 0: the unconditional one, 1.5-8
    usual); `interval` (t_lo, t_hi) in [0, 1]; `rescale` phi in [0, 1]; `null_cond`: the
    keywords of the unconditional call, e.g. `{"label": 10}` for a learned null class.

    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity", solver="heun",
    ...                  nfe=31, cond={"label": labels}, guidance=CFG(scale=3.0))
    """

    scale: Annotated[float, Field(ge=0, description="guidance scale w: 1 = conditional model")]
    interval: Annotated[
        tuple[float, float],
        Field(description="(t_lo, t_hi): guide only for t in this range (0 = noise, 1 = data)"),
    ] = (0.0, 1.0)
    rescale: Annotated[
        float, Field(ge=0, le=1, description="phi: std rescaling of Lin et al. 2024 (0: off)")
    ] = 0.0
    null_cond: Annotated[
        dict[str, Any] | None,
        Field(description="keywords of the unconditional call (default: each condition None)"),
    ] = None

    name = "cfg"

    def __post_init__(self) -> None:
        lo, hi = self.interval
        if not 0 <= lo <= hi <= 1:
            raise InvalidArgumentError(
                f"cfg.interval must satisfy 0 <= t_lo <= t_hi <= 1, got {tuple(self.interval)}"
            )

    def on_prediction(self, pred: Prediction, dynamics: Dynamics) -> Prediction:
        if self.scale == 1.0:
            return pred
        if self.null_cond is None and not dynamics.cond:
            raise InvalidArgumentError(
                "cfg guides a conditional model, but this solve has no condition: pass "
                "cond={...} to flowforge.sample (the model is called as field(x_t, t, **cond)), "
                "or give cfg a null_cond"
            )
        null = self.null_cond if self.null_cond is not None else dict.fromkeys(dynamics.cond)
        kind = dynamics.prediction
        u = dynamics.network(pred.x_t, pred.t, null)
        c = pred.as_(kind)
        w = expand_like(self._scale_at(pred.t), c)
        out = u + w * (c - u)
        if self.rescale > 0:
            ratio = _std(c) / _std(out).clamp_min(torch.finfo(out.dtype).tiny)
            out = self.rescale * ratio * out + (1 - self.rescale) * out
        return Prediction(out, kind, pred.x_t, pred.t, pred.path)

    def _scale_at(self, t: Tensor) -> Tensor:
        lo, hi = self.interval
        inside = (t >= lo) & (t <= hi)
        return torch.where(inside, torch.full_like(t, self.scale), torch.ones_like(t))


def _std(x: Tensor) -> Tensor:
    """Per-sample standard deviation over all but the batch dimension, shaped `(B, 1, ...)`."""
    return x.flatten(1).std(dim=1).reshape(x.shape[0], *(1,) * (x.ndim - 1))
