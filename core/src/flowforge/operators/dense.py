"""A dense matrix acting on flattened signals: compressed sensing and small exact references."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import check_noise_std, require_shape
from flowforge.operators.svd import SVDOperator


class Dense(SVDOperator):
    """`y = W x.flatten()`, `W (m, n)`; `y (B, m)`, signals of any shape with `n` entries.

    The SVD is computed once, in float64, the first time a spectral method is used.

    >>> op = Dense(gaussian_matrix(16, 64, torch.Generator().manual_seed(0)), noise_std=0.1)
    >>> y = op.simulate(x)                  # x (B, 64) -> y (B, 16)
    """

    def __init__(
        self, weight: Tensor, data_shape: Sequence[int] | None = None, noise_std: float = 0.0
    ):
        weight = torch.as_tensor(weight, dtype=torch.float64).detach().cpu()
        if weight.ndim != 2:
            raise InvalidArgumentError(f"weight must be a matrix (m, n), got {tuple(weight.shape)}")
        m, n = weight.shape
        shape = (n,) if data_shape is None else tuple(data_shape)
        if math.prod(shape) != n:
            raise InvalidArgumentError(
                f"weight: {n} columns but data_shape {shape} has {math.prod(shape)} entries; "
                "give a matrix with one column per signal entry"
            )
        self.weight = weight
        self.signal_shape, self.measurement_shape = shape, (m,)
        self.noise_std = check_noise_std(noise_std)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        return x.flatten(1) @ self._on("weight", x).T

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, self.measurement_shape, "y")
        return (y @ self._on("weight", y)).reshape(y.shape[0], *self.signal_shape)

    @cached_property
    def _svd(self) -> tuple[Tensor, Tensor]:
        """`V^T (n, n)` and the singular values padded with zeros to `(n,)`."""
        _, s, vh = torch.linalg.svd(self.weight, full_matrices=True)
        n = self.weight.shape[1]
        return vh, torch.cat([s, s.new_zeros(n - s.numel())])

    @property
    def right_vectors(self) -> Tensor:
        return self._svd[0]

    @property
    def spectrum(self) -> Tensor:
        return self._svd[1]

    def vt(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        return x.flatten(1) @ self._on("right_vectors", x).T

    def v(self, s: Tensor) -> Tensor:
        return (s @ self._on("right_vectors", s)).reshape(s.shape[0], *self.signal_shape)

    def singular_values(self, like: Tensor) -> Tensor:
        return self._on("spectrum", like)


def gaussian_matrix(m: int, n: int, generator: torch.Generator) -> Tensor:
    """An `(m, n)` matrix of i.i.d. `N(0, 1/m)` entries (so that `E[W^T W] = I`), float64."""
    if m < 1 or n < 1:
        raise InvalidArgumentError(f"gaussian_matrix needs m, n >= 1, got {m}, {n}")
    return torch.randn(m, n, generator=generator, dtype=torch.float64) / math.sqrt(m)


@dataclass(frozen=True)
class DenseParams:
    """Parameters of the registered `dense` operator: a seeded random Gaussian matrix."""

    measurements: Annotated[
        int | None, Field(ge=1, description="rows m (default: half the signal size)")
    ] = None
    seed: Annotated[int, Field(ge=0, description="seed of the matrix")] = 0
    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0


def build_dense(params: DenseParams, *, data_shape: Sequence[int] | None = None) -> Dense:
    """Factory of the registered `dense` operator for signals of shape `data_shape`."""
    shape = require_shape(data_shape, "dense")
    n = math.prod(shape)
    m = max(1, n // 2) if params.measurements is None else params.measurements
    weight = gaussian_matrix(m, n, torch.Generator().manual_seed(params.seed))
    return Dense(weight, shape, params.noise_std)
