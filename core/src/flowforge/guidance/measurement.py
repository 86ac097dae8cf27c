"""The observation `y = A x + noise` that posterior guidance conditions on, and its linear algebra.

Every posterior sampler needs the same few operations of the measurement: the residual
`y - A x`, solves with `scale A^T A + shift I`, the pseudo-inverse, and the Gaussian likelihood
of `y` under an uncertain signal. They are exact through the operator's SVD where it has one
(`flowforge.operators.SVDOperator`) and use a fixed number of conjugate-gradient steps otherwise
(`cg_iters`), so that any registered operator works and no step reads a value on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.guidance.linalg import batch_dot, conjugate_gradient
from flowforge.operators import Operator, SVDOperator
from flowforge.operators.svd import per_sample
from flowforge.tensors import matching


@dataclass(frozen=True, eq=False)
class Measurement:
    """A measurement `y = A x + noise_std * eps`, `eps ~ N(0, I)`, with `A` = `operator`.

    `y (B, *measurement_shape)`: one measurement per sample, or `(1, ...)` shared by the whole
    batch (posterior samples of one observation). The noise model is the operator's
    (`operator.noise_std`). `cg_iters`: conjugate-gradient steps for operators without an SVD.

    >>> op = registry.get("operator", "mask").build({"fraction": 0.5}, data_shape=(16,))
    >>> m = Measurement(op, op.simulate(x_true, generator))
    >>> flowforge.sample(model, noise, ..., guidance=[DPS(measurement=m)])
    """

    operator: Operator
    y: Tensor
    cg_iters: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.operator, Operator):
            raise InvalidArgumentError(
                f"Measurement.operator must be a flowforge.operators.Operator, got "
                f"{type(self.operator).__name__}; build one with registry.get('operator', name)"
            )
        if not isinstance(self.y, Tensor) or self.y.ndim < 1:
            raise InvalidArgumentError(
                "Measurement.y must be a tensor (B, *measurement_shape) or (1, ...), got "
                f"{type(self.y).__name__}"
            )
        if self.cg_iters < 1:
            raise InvalidArgumentError(f"Measurement.cg_iters must be >= 1, got {self.cg_iters}")

    @property
    def noise_std(self) -> float:
        return float(self.operator.noise_std)

    def target(self, like: Tensor) -> Tensor:
        """`y` in `like`'s dtype and device (give y on the sampling device: then no copy)."""
        return matching(self.y, like)

    def residual(self, x: Tensor) -> Tensor:
        """`y - A x` for signals `x (B, ...)`, in x's dtype and device."""
        return self.target(x) - self.operator.forward(x)

    def normal_solve(self, b: Tensor, shift: float | Tensor, scale: float | Tensor) -> Tensor:
        """`(scale A^T A + shift I)^{-1} b`; `shift`, `scale` floats or per-sample `(B,)`."""
        op = self.operator
        if isinstance(op, SVDOperator):
            return op.gram_solve(b, shift, scale)
        a, c = per_sample(scale, b), per_sample(shift, b)
        return conjugate_gradient(
            lambda v: a * op.adjoint(op.forward(v)) + c * v, b, b / (a + c), self.cg_iters
        )

    def pinv(self, r: Tensor) -> Tensor:
        """`A^+ r`: the operator's pseudo-inverse, else the minimum-norm least-squares solution
        by conjugate gradients on `A^T A x = A^T r` from 0."""
        op = self.operator
        if op.has_pinv:
            return op.pinv(r)
        b = op.adjoint(r)
        return conjugate_gradient(
            lambda v: op.adjoint(op.forward(v)), b, torch.zeros_like(b), self.cg_iters
        )

    def pulled_residual(self, x: Tensor, x_var: Tensor) -> Tensor:
        """`A^T (x_var A A^T + noise_std^2 I)^{-1} (y - A x)`, the gradient of the likelihood
        `log N(y; A x, noise_std^2 I + x_var A A^T)` with respect to `x`; `x_var (B,)` > 0.

        Solved in signal space by the push-through identity
        `A^T (v A A^T + s^2 I)^{-1} = (v A^T A + s^2 I)^{-1} A^T`; noiseless, it is `A^+ r / v`.
        """
        res = self.residual(x)
        if self.noise_std == 0:
            return self.pinv(res) / per_sample(x_var, x)
        return self.normal_solve(self.operator.adjoint(res), self.noise_std**2, x_var)

    def log_likelihood(self, x: Tensor, x_var: Tensor) -> Tensor:
        """`log N(y; A x, noise_std^2 I + x_var A A^T)` up to a constant shared by the batch.

        The likelihood of `y` when the signal is `N(x, x_var I)`, `(B,)`; `x_var (B,)` >= 0, the
        same for every sample (the dropped log-determinant then cancels between samples). Needs
        `noise_std > 0`.
        """
        if self.noise_std == 0:
            raise InvalidArgumentError(
                "this posterior sampler weighs samples by the Gaussian likelihood of y, which a "
                "noiseless operator does not have: build the operator with noise_std > 0 (a "
                "small value such as 1e-3 approximates exact data), or use ddnm / dds for hard "
                "data consistency"
            )
        op = self.operator
        y = self.target(x).expand(x.shape[0], *self.y.shape[1:])
        if isinstance(op, SVDOperator):
            return op.marginal_log_likelihood(x, y, x_var)
        # (v A A^T + s^2 I)^{-1} r = (r - v A u) / s^2 with u = A^T (v A A^T + s^2 I)^{-1} r.
        res = y - op.forward(x)
        u = self.pulled_residual(x, x_var)
        var = per_sample(x_var, res)
        quad = batch_dot(res, res - var * op.forward(u)) / self.noise_std**2
        return -0.5 * quad.flatten(1)[:, 0]
