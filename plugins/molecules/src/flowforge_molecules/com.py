"""Centre-of-mass-free coordinates: the subspace where translation-invariant densities live.

A density over positions that is invariant to translations cannot be normalised in R^{3n}, so
data, noise and every predicted velocity are kept on the zero-centroid subspace of the real
atoms (Hoogeboom et al. 2022, sec. 3; Koehler et al. 2020); padding atoms stay at zero.
"""

from __future__ import annotations

from torch import Tensor


def remove_com(x: Tensor, mask: Tensor) -> Tensor:
    """`x (B, N, D)` minus the centroid of its real atoms (`mask (B, N)`), zero on padding."""
    m = mask.to(x.dtype).unsqueeze(-1)
    count = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(1, keepdim=True) / count
    return (x - mean) * m
