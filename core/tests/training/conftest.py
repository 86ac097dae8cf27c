"""Shared targets of the training tests."""

from __future__ import annotations

import torch

from flowforge.targets import GaussianMixture


def four_modes(dim: int) -> GaussianMixture:
    """Four modes at distance 3 from the origin, std 0.3: far apart relative to the noise (the
    straightening and few-step tests' target; in 2-D the modes sit on the diagonals)."""
    if dim == 2:
        angle = torch.arange(4) * (torch.pi / 2) + torch.pi / 4
        means = torch.stack([angle.cos(), angle.sin()], dim=1)
    else:
        means = torch.randn(4, dim, generator=torch.Generator().manual_seed(0))
    return GaussianMixture(3.0 * means / means.norm(dim=1, keepdim=True), 0.3)
