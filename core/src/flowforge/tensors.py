"""Small tensor helpers shared across the core (broadcasting per-sample times, batch checks)."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


def expand_like(t: Tensor, x: Tensor) -> Tensor:
    """Reshape per-sample `t (B,)` (or a scalar) to broadcast against `x (B, ...)`."""
    if t.ndim == 0:
        return t
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def as_time(t: float | Tensor, batch: int, like: Tensor) -> Tensor:
    """A time given as a float, a 0-d or a `(B,)` tensor, as a `(B,)` tensor on `like`'s device."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t.expand(batch)
    if t.shape != (batch,):
        raise InvalidArgumentError(
            f"a time tensor must have shape ({batch},) (one time per sample), got {tuple(t.shape)}"
        )
    return t


def matching(t: Tensor, like: Tensor) -> Tensor:
    """`t` in `like`'s dtype and device: `t` itself when they match already (no op, no copy)."""
    if t.dtype == like.dtype and t.device == like.device:
        return t
    return t.to(dtype=like.dtype, device=like.device)
