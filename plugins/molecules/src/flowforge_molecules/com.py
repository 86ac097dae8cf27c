"""Centre-of-mass-free coordinates: the subspace where translation-invariant densities live.

A density over positions that is invariant to translations cannot be normalised in R^{3n}, so
data, noise and every predicted velocity are kept on the zero-centroid subspace of the real
atoms (Hoogeboom et al. 2022, sec. 3; Koehler et al. 2020); padding atoms stay at zero.
"""

from __future__ import annotations

import torch
from torch import Tensor


def remove_com(x: Tensor, mask: Tensor) -> Tensor:
    """`x (B, N, D)` minus the centroid of its real atoms (`mask (B, N)`), zero on padding."""
    m = mask.to(x.dtype).unsqueeze(-1)
    count = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(1, keepdim=True) / count
    return (x - mean) * m


def com_free_noise(
    shape: tuple[int, ...],
    mask: Tensor,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normal positions `(B, N, 3)` projected to the zero-centroid subspace."""
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=mask.device)
    return remove_com(noise, mask)


def centroid(x: Tensor, mask: Tensor) -> Tensor:
    """The centroid of the real atoms `(B, D)`."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)
