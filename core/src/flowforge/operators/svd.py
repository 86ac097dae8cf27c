"""Operators with a known singular value decomposition, and what posterior samplers derive from it.

`A = U diag(s) V^T` with `V` orthogonal. Subclasses give `vt` (x -> V^T x), `v` and the singular
values `s`; `U` is never needed, since `V^T A^T y = diag(s) U^T y`. From these follow the
pseudo-inverse, exact solves with `a A^T A + b I` (PiGDM, DDS) and the Gaussian likelihood of `y`
given an isotropic Gaussian belief about `x` (PiGDM, twisted SMC).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor

from flowforge.operators.base import Operator
from flowforge.tensors import expand_like, matching


class SVDOperator(Operator):
    """An operator with an SVD `A = U diag(s) V^T`, in spectral coordinates `V^T x`.

    Spectral coordinates are real, `(B, *spectral_shape)`; `singular_values` broadcasts against
    them (without the batch dimension) and is 0 on the null space of `A`. Singular values below
    `s.max() * eps * s.numel()` count as 0 (as in `numpy.linalg.pinv`).

        s = op.vt(x)                                     # V^T x
        x_new = op.v(s * op.singular_values(s))          # V diag(s) V^T x
        x0 = op.pinv(y) + op.project_nullspace(x0_hat)   # DDNM's projection
    """

    @abc.abstractmethod
    def vt(self, x: Tensor) -> Tensor:
        """Spectral coordinates `V^T x`: `(B, *signal_shape)` -> `(B, *spectral_shape)`."""

    @abc.abstractmethod
    def v(self, s: Tensor) -> Tensor:
        """Back to signal space: `V s`, the inverse of `vt`."""

    @abc.abstractmethod
    def singular_values(self, like: Tensor) -> Tensor:
        """Singular values `s >= 0` in `like`'s device and dtype, aligned with `vt`'s output."""

    def nonzero(self, like: Tensor) -> Tensor:
        """Boolean mask of the singular values counted as nonzero (the rank of `A` in total)."""
        s = self.singular_values(like)
        return s > s.max() * torch.finfo(s.dtype).eps * s.numel()

    def _inverse_square(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """`(s^+)^2` (0 where `s` counts as 0) and the nonzero mask, expanded to one sample."""
        s = self.singular_values(like)
        keep = self.nonzero(like).expand(like.shape[1:])
        return torch.where(keep, 1 / s.square(), torch.zeros_like(s)), keep

    def pinv(self, y: Tensor) -> Tensor:
        """`A^+ y = V diag(s^+)^2 V^T A^T y` (singular values counted as 0 are dropped)."""
        z = self.vt(self.adjoint(y))
        return self.v(z * self._inverse_square(z)[0])

    def gram_solve(self, x: Tensor, shift: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
        """`(scale A^T A + shift I)^{-1} x`, exactly; `shift`, `scale` floats or per-sample `(B,)`.

        The normal equations of regularised least squares (DDS's conjugate-gradient system, the
        PiGDM/DPS-with-covariance correction); needs `scale s^2 + shift > 0` everywhere.
        """
        z = self.vt(x)
        s2 = self.singular_values(z).square()
        return self.v(z / (per_sample(scale, z) * s2 + per_sample(shift, z)))

    def marginal_log_likelihood(self, x: Tensor, y: Tensor, x_var: float | Tensor) -> Tensor:
        """`log N(y; A x, noise_std^2 I + x_var A A^T)` per sample, `(B,)`.

        The likelihood of `y` when the signal is `N(x, x_var I)` rather than known: PiGDM's
        approximation of p(y | x_t) with `x` the data estimate and `x_var` its variance, and the
        twisting potential of twisted SMC. `x_var` is a float or per-sample `(B,)`; it reduces to
        `log_likelihood` at `x_var = 0`. With `noise_std = 0` it is the density on the range of
        `A` (the part of `y - A x` outside it is ignored), and `x_var` must be > 0.
        """
        res = y - self.forward(x)
        z = self.vt(self.adjoint(res))  # diag(s) U^T res
        inv_s2, keep = self._inverse_square(z)
        s2 = self.singular_values(z).square()
        var = per_sample(x_var, z) * s2 + self.noise_std**2
        var = torch.where(keep, var, torch.ones_like(var))  # 1: contributes nothing below
        coef2 = z.square() * inv_s2  # (U^T res)^2 on the range of A
        quad = (coef2 / var).flatten(1).sum(1)
        log_det = var.log().expand_as(z).flatten(1).sum(1)
        rank = keep.sum().to(z.dtype)
        dims = rank
        if self.noise_std > 0:
            dims = torch.full_like(rank, float(res[0].numel()))
            outside = res.flatten(1).square().sum(1) - coef2.flatten(1).sum(1)
            quad = quad + outside.clamp(min=0) / self.noise_std**2
            log_det = log_det + (dims - rank) * math.log(self.noise_std**2)
        return -0.5 * (quad + log_det + dims * math.log(2 * math.pi))


def per_sample(value: float | Tensor, like: Tensor) -> float | Tensor:
    """A float as it is, a per-sample `(B,)` tensor shaped to broadcast against `like (B, ...)`."""
    if isinstance(value, Tensor):
        return expand_like(matching(value, like), like)
    return float(value)
