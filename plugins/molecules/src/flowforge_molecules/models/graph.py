"""Masks of a dense, fully connected molecular graph: what both equivariant backbones read."""

from __future__ import annotations

import torch
from torch import Tensor


def dense_masks(mask: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """`(node (B, N, 1), edge (B, N, N, 1))` in `dtype` from the atom `mask (B, N)`: real atoms,
    and pairs of distinct real atoms (no self-loops, no padding)."""
    n = mask.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=mask.device)
    edge = (mask[:, :, None] & mask[:, None, :] & ~eye).to(dtype).unsqueeze(-1)
    return mask.to(dtype).unsqueeze(-1), edge
