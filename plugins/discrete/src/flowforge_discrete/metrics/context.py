"""What a sequence metric sees: samples, held-out data and the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.discrete import DiscretePath
from flowforge_discrete.data.base import TokenDataset


@dataclass(frozen=True)
class SequenceContext:
    """`samples (N, L)` and `test (M, L)` tokens; `train (K, L)` the training split (novelty);
    `model` the trained (EMA) network; `kind` diffusion or autoregressive; `path` the discrete
    path (diffusion); `generator` seeds the metric."""

    samples: Tensor
    test: Tensor
    train: Tensor
    dataset: TokenDataset
    model: Callable[..., Tensor]
    kind: str
    path: DiscretePath
    generator: torch.Generator
    device: torch.device
