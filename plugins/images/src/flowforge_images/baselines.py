"""Classical restorations to compare a generative prior against: the degraded input itself,
bicubic upsampling (super-resolution) and Wiener deconvolution (deblurring)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.operators import Blur, Downsample, Operator


def degraded_input(operator: Operator, y: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    """The measurement seen as an image `(M, *data_shape)`: `y` itself where it has the image's
    shape (denoising, deblurring), else `A^+ y` (zero-filled inpainting, block-replicated
    super-resolution)."""
    if tuple(y.shape[1:]) == tuple(data_shape):
        return y.float()
    return operator.pinv(y.double()).float()


def bicubic(y: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    """Bicubic upsampling of low-resolution images `y (M, C, h, w)` to `data_shape`, clamped to
    [0, 1]. (Block averages sit at block centres, which align with `align_corners=False`.)"""
    up = F.interpolate(y.double(), size=tuple(data_shape[-2:]), mode="bicubic", align_corners=False)
    return up.clamp(0, 1).float()


def wiener(operator: Blur, y: Tensor, signal_var: float) -> Tensor:
    """Wiener deconvolution of blurred images `y (M, C, H, W)` with the operator's own kernel:
    `X = conj(H) Y / (|H|^2 + noise_var / signal_var)` in the Fourier domain (circular, as the
    operator), clamped to [0, 1]. The mean is restored separately (it is not noise)."""
    shape = tuple(y.shape[1:])
    delta = torch.zeros(1, *shape, dtype=torch.float64)
    delta[..., 0, 0] = 1.0
    h = torch.fft.fft2(operator.forward(delta)[0])
    ratio = max(operator.noise_std**2, 1e-8) / max(signal_var, 1e-12)
    y = y.double()
    mean = y.mean(dim=(-2, -1), keepdim=True)
    spec = torch.fft.fft2(y - mean) * h.conj() / (h.abs().square() + ratio)
    return (torch.fft.ifft2(spec).real + mean).clamp(0, 1).float()


def classical_baselines(
    operator: Operator, y: Tensor, data_shape: tuple[int, ...], train: Tensor
) -> dict[str, Tensor]:
    """Every classical baseline that applies to `operator`, by name: `degraded` always,
    `bicubic` for `Downsample`, `wiener` for `Blur` (signal variance from `train`)."""
    out = {"degraded": degraded_input(operator, y, data_shape)}
    if isinstance(operator, Downsample):
        low = tuple(operator.forward(torch.zeros(1, *data_shape, dtype=torch.float64)).shape[1:])
        out["bicubic"] = bicubic(y.reshape(-1, *low), data_shape)
    if isinstance(operator, Blur):
        out["wiener"] = wiener(operator, y, float(train.double().var()))
    return out
