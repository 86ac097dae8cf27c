"""Distances between image sets in a classifier's feature space: Frechet, precision/recall.

`frechet_distance` is the Frechet (2-Wasserstein) distance between Gaussians fitted to two
feature sets, the formula of FID (Heusel et al. 2017) but in the LeNet feature space of
`flowforge_images.metrics.lenet`, hence `FD_lenet`: its values are not comparable with FID.
`precision_recall` is the k-nearest-neighbour manifold estimate of Kynkaanniemi et al. (2019).
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


def _radii(x: Tensor, k: int) -> Tensor:
    """Distance of each point of `x (N, F)` to its k-th nearest other point of `x`."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st is the point itself


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall): the share of `fake` inside the real k-NN manifold, and of `real`
    inside the fake one (Kynkaanniemi et al. 2019), for features `(N, F)`."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _radii(real, k), _radii(fake, k)
    d = torch.cdist(fake, real)  # (N_fake, N_real)
    precision = (d <= r_real[None]).any(1).double().mean()
    recall = (d.T <= r_fake[None]).any(1).double().mean()
    return float(precision), float(recall)


def class_accuracy(logits: Tensor, labels: Tensor) -> float:
    """The share of images whose classifier prediction is the class they were generated for."""
    return float((logits.argmax(1) == labels.to(logits.device)).double().mean())
