"""Batched conjugate gradients with a fixed number of iterations (no host synchronisation), and
the largest eigenvalue of `A^T A` by power iteration, for step sizes chosen before a solve."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def batch_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner products of `(B, ...)` tensors, shaped `(B, 1, ...)` to broadcast."""
    dot = (a * b).flatten(1).sum(1)
    return dot.reshape(dot.shape + (1,) * (a.ndim - 1))


def conjugate_gradient(
    apply: Callable[[Tensor], Tensor], b: Tensor, x0: Tensor, iters: int
) -> Tensor:
    """Approximately solve `M x = b` for every sample, `M` symmetric positive (semi)definite.

    `apply(x) = M x` on `(B, ...)` tensors; starts from `x0` and runs exactly `iters` steps, one
    system per sample. A sample whose residual has fallen to rounding level (or whose search
    direction has no positive curvature, as happens on the null space of a semidefinite `M`)
    stops moving: its steps are masked to 0 on the device, so the loop never reads a value on
    the host. From `x0 = 0` on a consistent semidefinite system the iterates stay in the range
    of `M`, so they tend to the minimum-norm solution.
    """
    x = x0
    r = b - apply(x)
    p = r
    rr = batch_dot(r, r)
    floor = torch.finfo(b.dtype).eps ** 2 * rr
    for _ in range(iters):
        mp = apply(p)
        pmp = batch_dot(p, mp)
        active = (rr > floor) & (pmp > 0)
        step = torch.where(active, rr / torch.where(active, pmp, 1.0), 0.0)
        x = x + step * p
        r = r - step * mp
        rr_next = batch_dot(r, r)
        beta = torch.where(active, rr_next / torch.where(active, rr, 1.0), 0.0)
        p = r + beta * p
        rr = rr_next
    return x


def gram_norm(apply: Callable[[Tensor], Tensor], like: Tensor, iters: int = 50) -> Tensor:
    """The largest eigenvalue of a symmetric positive semidefinite map such as `A^T A` (the
    Lipschitz constant of the data-fidelity gradient, which sets PnP and gradient step sizes),
    by `iters` power iterations from a fixed start on one signal shaped like `like[0]` (its
    dtype and device). A 0-d tensor, made without host synchronisation.

    >>> float(gram_norm(lambda v: op.adjoint(op.forward(v)), x))   # 0.25: 2x block means
    """
    # a fixed start with no random generator or host copy: a sinusoid of the entry index
    index = torch.arange(like[0].numel(), dtype=like.dtype, device=like.device)
    v = torch.sin(12.9898 * index + 1.0).reshape(1, *like.shape[1:])
    value = v.new_zeros(())
    for _ in range(iters):
        w = apply(v)
        value = batch_dot(v, w).flatten()[0] / batch_dot(v, v).flatten()[0]
        v = w / w.norm()
    return value
