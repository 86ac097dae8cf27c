"""Image sets compared in a classifier's feature space: precision/recall, class accuracy.

The Frechet distance is core's `flowforge.metrics.frechet.frechet_distance`; in the LeNet
feature space of `flowforge_images.metrics.lenet` it is `FD_lenet`, not comparable with FID.
`precision_recall` is the k-nearest-neighbour manifold estimate of Kynkaanniemi et al. (2019).
"""

from __future__ import annotations

import torch
from torch import Tensor


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
