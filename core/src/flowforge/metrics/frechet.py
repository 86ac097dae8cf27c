"""The Frechet (2-Wasserstein) distance between Gaussians fitted to two feature sets.

The formula of FID (Heusel et al. 2017); which network gives the features decides the name
(`FD_lenet` in the images plugin, FCD with ChemNet in `flowforge.metrics.chemnet`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sqrt_psd(m: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = torch.linalg.eigh(m)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """`||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)` of features `(N, F)`.

    Computed in float64 through symmetric eigendecompositions (stable for singular covariances).
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    root = _sqrt_psd(s_a)
    cross = torch.linalg.eigvalsh(root @ s_b @ root).clamp_min(0).sqrt().sum()
    value = (mu_a - mu_b).square().sum() + torch.trace(s_a) + torch.trace(s_b) - 2 * cross
    return float(value.clamp_min(0))
