"""An operator seen from rescaled coordinates, `z -> A (scale * z)`: a model's standard space."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.operators.base import Operator


class Rescaled(Operator):
    """`A diag(scale)`: the operator `A` for signals given as `z` with `x = scale * z + shift`.

    Why: a model trained on standardised data `z = (x - mean) / std` samples in `z`, while the
    measurement `y = A x + noise` is of the data. In the model's coordinates the same
    measurement reads `y - A mean = A (std * z) + noise`: this operator, with the same noise
    model, applied to `z`. `scale` broadcasts against one signal (`data_shape`, or a float).
    Forward and adjoint only: posterior samplers fall back to conjugate gradients (see
    `flowforge.guidance.Measurement`); for small signals an exact `Dense` matrix of `A diag(scale)`
    keeps the SVD (`flowforge.tasks.model_space`).

    >>> op_z = Rescaled(op, standardizer.std)
    >>> y_z = y - op(standardizer.mean[None])   # the measurement of z
    """

    def __init__(self, operator: Operator, scale: Tensor | float):
        self.operator = operator
        self.scale = torch.as_tensor(scale, dtype=torch.float64).detach().cpu()
        self.signal_shape = operator.signal_shape
        self.measurement_shape = operator.measurement_shape
        self.noise_std = operator.noise_std

    def forward(self, x: Tensor) -> Tensor:
        return self.operator.forward(x * self._on("scale", x))

    def adjoint(self, y: Tensor) -> Tensor:
        x = self.operator.adjoint(y)
        return x * self._on("scale", x)
