"""Masking (inpainting): observe the entries of a signal where a boolean mask is set."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import Shape, check_noise_std, require_shape
from flowforge.operators.svd import SVDOperator


class Mask(SVDOperator):
    """`y = x[mask]`: the observed entries, flattened to `(B, m)`; True in `mask` = observed.

    `mask` has the signal's shape or its trailing part, shared over the leading dimensions (a
    pixel mask `(H, W)` for images `(C, H, W)`). The rows of `A` are orthonormal, so `A^+ = A^T`
    (zero-filling) and the singular values are the mask itself.

    >>> op = Mask(random_mask((32, 32), 0.3, torch.Generator().manual_seed(0)), (3, 32, 32))
    >>> y = op.simulate(x)                  # (B, 3 * 307)
    >>> x_fill = op.pinv(y)                 # zeros where unobserved
    """

    def __init__(
        self, mask: Tensor, data_shape: Sequence[int] | None = None, noise_std: float = 0.0
    ):
        mask = torch.as_tensor(mask).detach().cpu()
        if mask.dtype != torch.bool:
            raise InvalidArgumentError(f"mask must be a boolean tensor, got dtype {mask.dtype}")
        shape = tuple(mask.shape) if data_shape is None else tuple(data_shape)
        if len(mask.shape) > len(shape) or shape[len(shape) - mask.ndim :] != tuple(mask.shape):
            raise InvalidArgumentError(
                f"mask: shape {tuple(mask.shape)} does not fit data_shape {shape}; give a mask "
                f"of the signal's shape or its trailing dimensions (e.g. {shape[-2:]} for images)"
            )
        self.observed = mask.expand(shape).contiguous()
        self.index = self.observed.flatten().nonzero().squeeze(1)
        if self.index.numel() == 0:
            raise InvalidArgumentError("mask observes no entry; set at least one entry to True")
        self.signal_shape = shape
        self.measurement_shape = (self.index.numel(),)
        self.noise_std = check_noise_std(noise_std)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        return x.flatten(1).index_select(1, self._on("index", x, torch.long))

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, self.measurement_shape, "y")
        zeros = y.new_zeros(y.shape[0], math.prod(self.signal_shape))
        filled = zeros.index_copy(1, self._on("index", y, torch.long), y)
        return filled.reshape(y.shape[0], *self.signal_shape)

    def pinv(self, y: Tensor) -> Tensor:
        """`A^T y`: the rows of `A` are orthonormal."""
        return self.adjoint(y)

    def vt(self, x: Tensor) -> Tensor:
        return x

    def v(self, s: Tensor) -> Tensor:
        return s

    def singular_values(self, like: Tensor) -> Tensor:
        return self._on("observed", like)


def random_mask(shape: Sequence[int], fraction: float, generator: torch.Generator) -> Tensor:
    """A boolean mask of `shape` with exactly `round(fraction * size)` (at least 1) True entries."""
    if not 0 < fraction <= 1:
        raise InvalidArgumentError(f"fraction must be in (0, 1], got {fraction}")
    size = math.prod(shape)
    chosen = torch.randperm(size, generator=generator)[: max(1, round(fraction * size))]
    return torch.zeros(size, dtype=torch.bool).index_fill(0, chosen, True).reshape(tuple(shape))


def box_mask(shape: Sequence[int], box: Sequence[int]) -> Tensor:
    """A mask of `shape` (..., H, W) observing everything but the rectangle `(top, left, h, w)`."""
    shape = tuple(shape)
    top, left, height, width = box
    if len(shape) < 2 or not (
        0 <= top
        and 0 <= left
        and height > 0
        and width > 0
        and top + height <= shape[-2]
        and left + width <= shape[-1]
    ):
        raise InvalidArgumentError(
            f"box: (top, left, height, width) = {tuple(box)} must lie inside the last two "
            f"dimensions of data_shape {shape}"
        )
    mask = torch.ones(shape[-2:], dtype=torch.bool)
    mask[top : top + height, left : left + width] = False
    return mask


@dataclass(frozen=True)
class MaskParams:
    """Parameters of the registered `mask` operator: a seeded random mask or a missing box."""

    fraction: Annotated[
        float | None,
        Field(gt=0, le=1, description="fraction of entries observed, at random (default 0.5)"),
    ] = None
    box: Annotated[
        tuple[int, int, int, int] | None,
        Field(description="a missing rectangle (top, left, height, width) in the last two dims"),
    ] = None
    mask_dims: Annotated[
        int | None,
        Field(
            ge=1,
            description="random masks: draw over the last mask_dims dims (2: per pixel, "
            "shared by channels); default: every entry",
        ),
    ] = None
    seed: Annotated[int, Field(ge=0, description="seed of the random mask")] = 0
    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0


def build_mask(params: MaskParams, *, data_shape: Sequence[int] | None = None) -> Mask:
    """Factory of the registered `mask` operator for signals of shape `data_shape`."""
    shape: Shape = require_shape(data_shape, "mask")
    if params.box is not None:
        if params.fraction is not None:
            raise InvalidArgumentError("mask: give either fraction (random) or box, not both")
        return Mask(box_mask(shape, params.box), shape, params.noise_std)
    dims = len(shape) if params.mask_dims is None else params.mask_dims
    if dims > len(shape):
        raise InvalidArgumentError(
            f"mask_dims = {dims} exceeds the {len(shape)} dimensions of data_shape {shape}"
        )
    gen = torch.Generator().manual_seed(params.seed)
    fraction = 0.5 if params.fraction is None else params.fraction
    return Mask(random_mask(shape[len(shape) - dims :], fraction, gen), shape, params.noise_std)
