"""Downsampling by averaging over `factor`-sized blocks: the super-resolution operator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import check_noise_std, require_shape
from flowforge.operators.svd import SVDOperator


def helmert(size: int) -> Tensor:
    """The `(size, size)` Helmert matrix: orthogonal, first row constant, the rest zero-sum."""
    q = torch.zeros(size, size, dtype=torch.float64)
    q[0] = 1 / math.sqrt(size)
    for k in range(1, size):
        q[k, :k] = 1 / math.sqrt(k * (k + 1))
        q[k, k] = -k / math.sqrt(k * (k + 1))
    return q


class Downsample(SVDOperator):
    """`y` = the mean of each `factor` (1-D) or `factor x factor` (2-D) block of the last dims.

    Each row of `A` averages one block of `b = factor^spatial_dims` entries, so `A A^T = I / b`:
    `A^+ = b A^T` (each block filled with its value) and the one nonzero singular value per
    block is `1 / sqrt(b)`. The spectral basis is the Helmert matrix inside each block.

    >>> op = Downsample(4, data_shape=(3, 64, 64))      # y (B, 3, 16, 16)
    """

    def __init__(
        self,
        factor: int,
        data_shape: Sequence[int],
        spatial_dims: int = 2,
        noise_std: float = 0.0,
    ):
        shape = tuple(data_shape)
        if spatial_dims not in (1, 2) or len(shape) < spatial_dims:
            raise InvalidArgumentError(
                f"downsample: spatial_dims must be 1 or 2 and at most the signal's dimensions, "
                f"got {spatial_dims} for data_shape {shape}; use spatial_dims=1 for vectors"
            )
        lead, spatial = shape[: len(shape) - spatial_dims], shape[len(shape) - spatial_dims :]
        if factor < 1 or any(n % factor for n in spatial):
            raise InvalidArgumentError(
                f"downsample: factor {factor} must be >= 1 and divide the signal's size "
                f"{spatial} (data_shape {shape}); pick a divisor or crop the signals"
            )
        self.factor, self.spatial_dims, self.block = factor, spatial_dims, factor**spatial_dims
        self.coarse = tuple(n // factor for n in spatial)
        self.signal_shape = shape
        self.measurement_shape = (*lead, *self.coarse)
        self.basis = helmert(self.block)
        self.spectrum = torch.zeros(self.block, dtype=torch.float64)
        self.spectrum[0] = 1 / math.sqrt(self.block)
        self.noise_std = check_noise_std(noise_std)

    def _blocks(self, x: Tensor) -> Tensor:
        """`(B, *signal_shape)` -> `(B, *measurement_shape, block)`."""
        lead = x.shape[: x.ndim - self.spatial_dims]
        f = self.factor
        if self.spatial_dims == 1:
            return x.reshape(*lead, self.coarse[0], f)
        h, w = self.coarse
        return x.reshape(*lead, h, f, w, f).transpose(-3, -2).reshape(*lead, h, w, f * f)

    def _unblocks(self, blocks: Tensor) -> Tensor:
        """The inverse of `_blocks`."""
        lead = blocks.shape[: blocks.ndim - self.spatial_dims - 1]
        f = self.factor
        if self.spatial_dims == 1:
            return blocks.reshape(*lead, self.coarse[0] * f)
        h, w = self.coarse
        return blocks.reshape(*lead, h, w, f, f).transpose(-3, -2).reshape(*lead, h * f, w * f)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        return self._blocks(x).mean(-1)

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, self.measurement_shape, "y")
        return self._unblocks((y / self.block).unsqueeze(-1).expand(*y.shape, self.block))

    def pinv(self, y: Tensor) -> Tensor:
        """`b A^T y`: each block filled with its measured mean."""
        return self.block * self.adjoint(y)

    def vt(self, x: Tensor) -> Tensor:
        """Helmert coordinates of each block: `(B, *measurement_shape, block)`."""
        self._check(x, self.signal_shape, "x")
        return self._blocks(x) @ self._on("basis", x).T

    def v(self, s: Tensor) -> Tensor:
        return self._unblocks(s @ self._on("basis", s))

    def singular_values(self, like: Tensor) -> Tensor:
        return self._on("spectrum", like)


@dataclass(frozen=True)
class DownsampleParams:
    """Parameters of the registered `downsample` operator."""

    factor: Annotated[int, Field(ge=1, description="block size per dimension")] = 2
    spatial_dims: Annotated[
        Literal[1, 2], Field(description="average over the last 1 (vectors) or 2 (images) dims")
    ] = 2
    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0


def build_downsample(
    params: DownsampleParams, *, data_shape: Sequence[int] | None = None
) -> Downsample:
    """Factory of the registered `downsample` operator for signals of shape `data_shape`."""
    shape = require_shape(data_shape, "downsample")
    return Downsample(params.factor, shape, params.spatial_dims, params.noise_std)
