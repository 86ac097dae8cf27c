"""Sinusoidal embeddings of the time `t` in [0, 1], so an MLP can resolve fine changes in t."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError


class SinusoidalTimeEmbedding(nn.Module):
    """`t (B,) -> (B, dim)`: `[sin(2 pi f_k t), cos(2 pi f_k t)]` at log-spaced frequencies.

    Frequencies run from 1/2 to `max_freq` cycles per unit time, geometrically spaced: low ones
    give the coarse position on the path, high ones let the network change quickly near the ends.

    >>> emb = SinusoidalTimeEmbedding(32)
    >>> emb(torch.rand(8)).shape   # (8, 32)
    """

    freqs: Tensor

    def __init__(self, dim: int, max_freq: float = 64.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise InvalidArgumentError(f"time embedding dim must be an even number >= 2, got {dim}")
        freqs = torch.logspace(math.log10(0.5), math.log10(max_freq), dim // 2)
        self.register_buffer("freqs", 2 * math.pi * freqs, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        angle = t.reshape(-1, 1).to(self.freqs.dtype) * self.freqs
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
