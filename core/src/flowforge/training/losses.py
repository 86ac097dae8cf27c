"""Regression losses of flow matching / denoising for every prediction kind on any affine path.

For `x_t = alpha(t) x_1 + sigma(t) x_0` the conditional targets are: velocity `dx_t`, data `x_1`,
noise `x_0`, score `-x_0 / sigma(t)`. Each is the conditional version of the marginal quantity
that `AffinePath.convert` maps between, so the minimiser of every loss is the exact prediction
of that kind (tests check this with `flowforge.targets.GaussianMixture`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.paths.base import AffinePath, PathSample, check_prediction
from flowforge.tensors import expand_like


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


def regression_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    path: AffinePath,
    prediction: str,
    x_0: Tensor,
    x_1: Tensor,
    t: Tensor,
) -> Tensor:
    """Mean squared error of `model(x_t, t)` against the `prediction` target; a scalar.

    `x_0` noise and `x_1` data `(B, ...)`, `t (B,)`. Per-sample errors are averaged over all
    coordinates, then over the batch.
    """
    sample = path.sample(x_0, x_1, t)
    target = regression_target(sample, path, prediction)
    err = (model(sample.x_t, t) - target) ** 2
    return err.reshape(err.shape[0], -1).mean(1).mean()


def uniform_times(
    batch: int, t_span: tuple[float, float], generator: torch.Generator, like: Tensor
) -> Tensor:
    """`t (B,)` uniform on `[t0, t1)`, drawn from `generator` on `like`'s device and dtype."""
    t0, t1 = t_span
    u = torch.rand(batch, generator=generator, device=like.device, dtype=like.dtype)
    return t0 + (t1 - t0) * u
