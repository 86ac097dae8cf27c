"""The measurement as the model sees it: operator and `y` in the model's standardised space.

Runs train on `z = (x - mean) / std` (`flowforge.data.standardize`), so posterior guidance,
which acts on the sampler's state, must condition on the measurement of `z`: with
`x = std * z + mean`, `y = A x + noise` is `y - A mean = A diag(std) z + noise`. Small signals
get the exact matrix of `A diag(std)` (a `Dense` operator, so every SVD-based sampler such as
DDNM+ keeps working exactly); larger ones a matrix-free `Rescaled` operator, for which the
samplers solve with conjugate gradients. The noise model is unchanged.
"""

from __future__ import annotations

import math

from torch import Tensor

from flowforge.data.standardize import Standardizer
from flowforge.operators import Dense, Operator, Rescaled

DENSE_LIMIT = 1024  # signal entries up to which A diag(std) is materialised (n applications of A)


def to_model_space(
    operator: Operator,
    y: Tensor,
    standardizer: Standardizer,
    data_shape: tuple[int, ...],
    dense_limit: int = DENSE_LIMIT,
) -> tuple[Operator, Tensor]:
    """`(A_z, y_z)`: the operator on standardised signals and the measurements `y (M, ...)` of them.

    `y_z` is float32, `(M, m)` when `A_z` is the dense matrix (it measures flat vectors) and of
    `y`'s shape otherwise.
    """
    mean = standardizer.mean.double().reshape(1, *data_shape)
    std = standardizer.std.double().reshape(data_shape)
    y_z = y.double() - operator.forward(mean)
    if math.prod(data_shape) <= dense_limit:
        matrix = operator.matrix(data_shape) * std.reshape(1, -1)
        dense = Dense(matrix, data_shape, noise_std=operator.noise_std)
        return dense, y_z.reshape(y.shape[0], -1).float()
    return Rescaled(operator, std), y_z.float()
