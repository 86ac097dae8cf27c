"""Regression losses of flow matching / denoising for every prediction kind on any affine path.

A loss is a per-sample squared error (or its pseudo-Huber version) of the model's prediction
against the conditional target, times a time weighting (`flowforge.training.weighting`).

For `x_t = alpha(t) x_1 + sigma(t) x_0` the conditional targets are: velocity `dx_t`, data `x_1`,
noise `x_0`, score `-x_0 / sigma(t)`. Each is the conditional version of the marginal quantity
that `AffinePath.convert` maps between, so the minimiser of every squared-error loss (with any
weighting) is the exact prediction of that kind (tests check this with
`flowforge.targets.GaussianMixture`); pseudo-Huber trades that for robustness to outliers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath, PathSample, check_prediction
from flowforge.spec.models import LossSpec
from flowforge.tensors import expand_like
from flowforge.training.weighting import loss_weight


def regression_target(sample: PathSample, path: AffinePath, prediction: str) -> Tensor:
    """The conditional regression target of `prediction` for one path sample, `(B, ...)`.

    The score target is unbounded where sigma(t) -> 0; sample t away from that end or predict
    another kind there.
    """
    check_prediction(prediction)
    if prediction == "velocity":
        return sample.dx_t
    if prediction == "data":
        return sample.x_1
    if prediction == "noise":
        return sample.x_0
    return -sample.x_0 / expand_like(path.sigma(sample.t), sample.x_0)


def pseudo_huber(mse: Tensor, c: float) -> Tensor:
    """`sqrt(mse + c^2) - c` of per-sample mean squared errors: quadratic near 0, linear far.

    With errors averaged over coordinates, Song & Dhariwal's (2023) `c = 0.00054 sqrt(d)` on the
    summed error is `c = 0.00054` here, for any dimension `d`.
    """
    return torch.sqrt(mse + c * c) - c


def per_sample_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    path: AffinePath,
    prediction: str,
    x_0: Tensor,
    x_1: Tensor,
    t: Tensor,
    loss: LossSpec | None = None,
) -> Tensor:
    """Each sample's loss `(B,)`: its weighted (pseudo-Huber) error against the target.

    `x_0` noise and `x_1` data `(B, ...)`, `t (B,)`. The squared error is averaged over the
    coordinates, passed through `pseudo_huber` if `loss.huber_c` is set, and multiplied by the
    time weighting of `loss.weighting` (`flowforge.training.weighting`). `loss=None` is the
    plain mean squared error.
    """
    sample = path.sample(x_0, x_1, t)
    target = regression_target(sample, path, prediction)
    return weighted_error(model(sample.x_t, t), target, path, prediction, t, loss)


def weighted_error(
    pred: Tensor,
    target: Tensor,
    path: AffinePath,
    prediction: str,
    t: Tensor,
    loss: LossSpec | None = None,
) -> Tensor:
    """Each sample's loss `(B,)` of a prediction `pred` of kind `prediction` against `target`.

    The squared error averaged over coordinates, pseudo-Huber if `loss.huber_c` is set, times
    the time weighting of `loss.weighting` at `t (B,)`; `loss=None` is the plain error.
    """
    err = (pred - target) ** 2
    per = err.reshape(err.shape[0], -1).mean(1)
    if loss is None:
        return per
    if loss.huber_c is not None:
        per = pseudo_huber(per, loss.huber_c)
    weight = loss_weight(path, prediction, t, loss)
    return per if weight is None else per * weight.to(per.dtype)


def regression_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    path: AffinePath,
    prediction: str,
    x_0: Tensor,
    x_1: Tensor,
    t: Tensor,
    loss: LossSpec | None = None,
    pair_weight: Tensor | None = None,
) -> Tensor:
    """The batch loss, a scalar: the mean of `per_sample_loss`, each times its `pair_weight`.

    `pair_weight (B,)` comes from a weighting coupling (W-CFM) and has mean 1; None is 1.

    >>> regression_loss(model, CondOT(), "velocity", x_0, x_1, t)            # plain MSE
    >>> regression_loss(model, path, "noise", x_0, x_1, t, LossSpec(weighting="min_snr"))
    """
    per = per_sample_loss(model, path, prediction, x_0, x_1, t, loss)
    if pair_weight is not None:
        per = per * pair_weight.to(per.dtype)
    return per.mean()
