"""Steering by a likelihood score: `grad log p_t(x_t | c) = grad log p_t(x_t) + grad log p(c|x_t)`.

Gradient guidance (classifier, DPS, PiGDM, self-guidance) estimates `g = grad_{x_t} log p(c|x_t)`
and adds it to the model's score. At fixed `(x_t, t)` every prediction kind is affine in the
score, so the change is applied in the model's own kind, with finite coefficients wherever the
kind itself is finite (`score_coefficient`), and any solver sees a consistent prediction.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Prediction
from flowforge.tensors import expand_like


def score_coefficient(pred: Prediction) -> Tensor:
    """`d kind / d score` at `(pred.x_t, pred.t)` for the prediction's kind, shaped like x_t.

    With `x_t = alpha x_1 + sigma x_0`: score 1, noise `-sigma`, data `sigma^2 / alpha`,
    velocity `sigma (alpha' sigma - sigma' alpha) / alpha`. The last two divide by alpha, which
    is 0 at pure noise; there `x_t` carries no information about the data, so the likelihood
    score is exactly 0 and the coefficient is set to 0 (a computed gradient is only rounding
    error there, which 1 / alpha would blow up).
    """
    path, t, like = pred.path, pred.t, pred.x_t
    if pred.kind == "score":
        return torch.ones((), dtype=like.dtype, device=like.device)
    s = expand_like(path.sigma(t), like)
    if pred.kind == "noise":
        return -s
    a = expand_like(path.alpha(t), like)
    informative = a > 0
    a = torch.where(informative, a, torch.ones_like(a))
    if pred.kind == "data":
        coef = s * s / a
    else:
        da, ds = expand_like(path.d_alpha(t), like), expand_like(path.d_sigma(t), like)
        coef = s * (da * s - ds * a) / a
    return torch.where(informative, coef, torch.zeros_like(coef))


def add_score(pred: Prediction, g: Tensor) -> Prediction:
    """The prediction whose score is `pred.score + g`, at the same point and of the same kind."""
    return pred.with_value(pred.value + score_coefficient(pred) * g.to(pred.value.dtype))


def state_gradient(pred: Prediction, objective: Tensor, who: str) -> Tensor:
    """`grad_{x_t} objective.sum()`, through the network when `objective` depends on the output.

    Needs `pred.x_t` to carry gradients, which `flowforge.sample` arranges for guidance with
    `requires_grad = True`. The graph is kept so that several hooks may differentiate it.
    """
    if not pred.x_t.requires_grad:
        raise InvalidArgumentError(
            f"{who} differentiates through the model, but x_t carries no gradient: run it "
            "through flowforge.sample (or call a Dynamics holding it with gradients enabled)"
        )
    (grad,) = torch.autograd.grad(objective.sum(), pred.x_t, retain_graph=True)
    return grad.detach()


def data_vjp(pred: Prediction, v: Tensor, who: str) -> Tensor:
    """`J^T v` with `J = d D(x_t) / d x_t`, the Jacobian of the data prediction (one backward)."""
    return state_gradient(pred, (pred.data * v.detach()).flatten(1).sum(1), who)
