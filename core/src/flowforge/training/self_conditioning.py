"""Self-conditioning (Chen et al. 2022, "Analog Bits"): the model also sees its own data estimate.

A model **opts in** by setting the attribute `self_conditioning = True` and accepting a keyword
`self_cond`: a data estimate `(B, *data_shape)` shaped like `x_t`, or None, which it must treat
as zeros (so it stays a plain field `(x_t, t) -> prediction`). The core `mlp` does so with
`model.params.self_condition: true` (the estimate is concatenated to its input).

Training (`train.self_condition: true`): for each sample, with probability 1/2 the model first
predicts with a zero estimate, that prediction is converted to a data estimate through the path
and detached, and the trained prediction gets it as `self_cond`; otherwise the estimate is zero.
Which samples get it is drawn with the batch from the training generator (a per-sample mask, so
gradient accumulation and resume are exact; the extra forward pass runs without gradients).

Sampling: `SelfConditioned` feeds every model call the data estimate of the call before it
(zeros on the first call of a solve), as Chen et al.'s sampler does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.tensors import expand_like

ATTRIBUTE = "self_conditioning"
PROBABILITY = 0.5


def takes_self_condition(model: Any) -> bool:
    """Whether `model` opted in to a self-conditioning input (`model.self_conditioning`)."""
    return bool(getattr(model, ATTRIBUTE, False))


def check_model(model: nn.Module, enabled: bool, name: str) -> None:
    """`train.self_condition` and the model's opt-in must agree; raise naming both otherwise.

    A model with the extra input that is trained without it would be sampled with estimates it
    never learned to read; a model without it cannot take them.
    """
    takes = takes_self_condition(model)
    if enabled and not takes:
        raise InvalidArgumentError(
            f"train.self_condition: model {name!r} takes no self-conditioning input; build it "
            "with one (mlp: model.params.self_condition: true) or set train.self_condition: false"
        )
    if takes and not enabled:
        raise InvalidArgumentError(
            f"model {name!r} is built with a self-conditioning input "
            "(model.params.self_condition: true) but train.self_condition is false; set "
            "train.self_condition: true, or build the model without the input"
        )


def draw_mask(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Which of `n` samples get their own estimate: `(n,)` booleans, each True w.p. 1/2."""
    return torch.rand(n, generator=generator, device=device) < PROBABILITY


def on_own_estimate(
    call: Callable[[Tensor | None], Any], estimate: Callable[[Any], Tensor], mask: Tensor
) -> Any:
    """The training pass of a self-conditioned model: `call(self_cond)` returns its output.

    A first call with no estimate (read as zeros) and no gradients gives `estimate(output)`
    `(B, ...)`, kept for the samples of `mask (B,)` and zero for the others; the returned output
    is the second call's, conditioned on it (detached). Any state layout: plugins pass their own
    `estimate`.
    """
    with torch.no_grad():
        first = estimate(call(None))
        first = first * expand_like(mask, first).to(first.dtype)
    return call(first.detach())


def self_conditioned_call(
    network: Callable[..., Tensor], path: AffinePath, prediction: str, mask: Tensor
) -> Callable[[Tensor, Tensor], Tensor]:
    """The training call `(x_t, t) -> prediction` of a self-conditioned model on one tensor:
    `on_own_estimate` with the data estimate through `path`."""
    check_prediction(prediction)

    def call(x_t: Tensor, t: Tensor) -> Tensor:
        return on_own_estimate(
            lambda est: network(x_t, t, self_cond=torch.zeros_like(x_t) if est is None else est),
            lambda out: path.convert(out, prediction, "data", x_t, t),
            mask,
        )

    return call


class SelfConditioned:
    """A self-conditioned model as a field for `flowforge.sample`: each call gets the previous
    call's data estimate.

    Stateful: call `reset()` before every solve (`flowforge.tasks.sampling` does). A call whose
    batch shape differs from the previous one starts again from a zero estimate.

    >>> field = SelfConditioned(model, path, "velocity")
    >>> field.reset(); x = flowforge.sample(field, noise, path=path, prediction="velocity", ...)
    """

    def __init__(self, model: Callable[..., Tensor], path: AffinePath, prediction: str):
        if not takes_self_condition(model):
            raise InvalidArgumentError(
                "SelfConditioned needs a model with a self-conditioning input "
                f"(`{ATTRIBUTE} = True` and a `self_cond` keyword)"
            )
        self.model = model
        self.path = path
        self.prediction = check_prediction(prediction)
        self._estimate: Tensor | None = None

    def reset(self) -> None:
        """Forget the previous estimate: the next call is the first of a solve."""
        self._estimate = None

    def __call__(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        estimate = self._estimate
        if estimate is None or estimate.shape != x_t.shape:
            estimate = torch.zeros_like(x_t)
        out = self.model(x_t, t, self_cond=estimate.to(x_t.dtype), **cond)
        data = self.path.convert(out, self.prediction, "data", x_t, t.to(x_t.dtype))
        self._estimate = data.detach()
        return out
