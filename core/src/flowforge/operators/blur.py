"""Blur: circular convolution with a kernel, by FFT, on 1-D or 2-D signals with leading channels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import check_noise_std, complex_dtype, require_shape
from flowforge.operators.svd import SVDOperator


def hartley(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The orthonormal discrete Hartley transform over `dims` (its own inverse).

    Real and orthogonal, and it diagonalises every circulant operator whose eigenvalues are real
    and symmetric under `k -> -k`, such as `A^T A` for a real kernel: the spectral basis of blur.
    """
    z = torch.fft.fftn(x, dim=dims, norm="ortho")
    return z.real - z.imag


class Blur(SVDOperator):
    """`y = k * x`, circular convolution over the last `kernel.ndim` (1 or 2) dimensions.

    Circular boundaries make `A` diagonal in the Fourier basis: forward and adjoint are two FFTs
    each, and the singular values are `|FFT(k)|` in the Hartley basis (`hartley`). The kernel's
    centre is at index `size // 2` of each dimension; leading dimensions (channels) share it.

    >>> op = Blur(gaussian_kernel(2.0), data_shape=(3, 64, 64), noise_std=0.01)
    >>> y = op.simulate(x)                    # (B, 3, 64, 64)
    """

    def __init__(self, kernel: Tensor, data_shape: Sequence[int], noise_std: float = 0.0):
        kernel = torch.as_tensor(kernel, dtype=torch.float64).detach().cpu()
        shape = tuple(data_shape)
        spatial = shape[len(shape) - kernel.ndim :]
        if kernel.ndim not in (1, 2) or len(shape) < kernel.ndim:
            raise InvalidArgumentError(
                f"kernel: a 1-D or 2-D kernel for signals with at least as many dimensions; got "
                f"a kernel of shape {tuple(kernel.shape)} for data_shape {shape}"
            )
        if any(k > n for k, n in zip(kernel.shape, spatial, strict=True)):
            raise InvalidArgumentError(
                f"kernel: shape {tuple(kernel.shape)} is larger than the signal's {spatial}; "
                "use a smaller kernel (or a smaller std)"
            )
        self.dims = tuple(range(-kernel.ndim, 0))
        full = torch.zeros(spatial, dtype=torch.float64)
        full[tuple(slice(0, k) for k in kernel.shape)] = kernel
        full = torch.roll(full, [-(k // 2) for k in kernel.shape], dims=self.dims)
        self.transfer = torch.fft.rfftn(full, dim=self.dims)
        self.spectrum = torch.fft.fftn(full, dim=self.dims).abs()
        self.kernel = kernel
        self.signal_shape = self.measurement_shape = shape
        self.noise_std = check_noise_std(noise_std)

    def _convolve(self, x: Tensor, conjugate: bool) -> Tensor:
        h = self._on("transfer", x, complex_dtype(x.dtype))
        spectrum = torch.fft.rfftn(x, dim=self.dims) * (h.conj() if conjugate else h)
        return torch.fft.irfftn(spectrum, s=self.signal_shape[-len(self.dims) :], dim=self.dims)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        return self._convolve(x, conjugate=False)

    def adjoint(self, y: Tensor) -> Tensor:
        """Correlation with the kernel: the FFT of the flipped kernel is the conjugate."""
        self._check(y, self.measurement_shape, "y")
        return self._convolve(y, conjugate=True)

    def vt(self, x: Tensor) -> Tensor:
        return hartley(x, self.dims)

    def v(self, s: Tensor) -> Tensor:
        return hartley(s, self.dims)

    def singular_values(self, like: Tensor) -> Tensor:
        return self._on("spectrum", like)


def gaussian_kernel(std: float, spatial_dims: int = 2, radius: int | None = None) -> Tensor:
    """A normalised Gaussian kernel of width `2 radius + 1` per dimension (default radius 3 std)."""
    if not std > 0 or spatial_dims not in (1, 2):
        raise InvalidArgumentError(
            f"gaussian_kernel needs std > 0 and spatial_dims 1 or 2, got {std}, {spatial_dims}"
        )
    radius = math.ceil(3 * std) if radius is None else radius
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (offsets / std) ** 2)
    g = g / g.sum()
    return g if spatial_dims == 1 else torch.outer(g, g)


@dataclass(frozen=True)
class BlurParams:
    """Parameters of the registered `blur` operator: an isotropic Gaussian kernel."""

    std: Annotated[float, Field(gt=0, description="kernel std in samples (pixels)")] = 1.0
    spatial_dims: Annotated[
        Literal[1, 2], Field(description="blur the last 1 (sequences) or 2 (images) dims")
    ] = 2
    truncate: Annotated[
        float, Field(gt=0, description="kernel radius in stds (capped by the signal size)")
    ] = 3.0
    noise_std: Annotated[float, Field(ge=0, description="measurement noise std")] = 0.0


def build_blur(params: BlurParams, *, data_shape: Sequence[int] | None = None) -> Blur:
    """Factory of the registered `blur` operator for signals of shape `data_shape`."""
    shape = require_shape(data_shape, "blur")
    if len(shape) < params.spatial_dims:
        raise InvalidArgumentError(
            f"blur: spatial_dims = {params.spatial_dims} needs signals with as many dimensions, "
            f"got data_shape {shape}; set spatial_dims: 1 for vectors and sequences"
        )
    largest = (min(shape[len(shape) - params.spatial_dims :]) - 1) // 2
    radius = min(math.ceil(params.truncate * params.std), largest)
    kernel = gaussian_kernel(params.std, params.spatial_dims, radius)
    return Blur(kernel, shape, params.noise_std)
