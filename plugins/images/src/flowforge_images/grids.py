"""Image grids as PNG files: samples, CFG sweeps, restorations side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor


def grid_array(images: Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """`images (N, C, H, W)` in [0, 1] tiled row by row into one `(H', W', C)` uint8 array."""
    x = images.detach().float().clamp(0, 1).cpu().numpy()
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        out[top : top + h, left : left + w] = x[i].transpose(1, 2, 0)
    return (out * 255).round().astype(np.uint8)


def save_grid(images: Tensor, file: Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Write `images` as a PNG grid (each pixel `scale` x `scale`); returns the file."""
    from PIL import Image

    array = grid_array(images, nrow)
    if scale > 1:
        array = array.repeat(scale, 0).repeat(scale, 1)
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(file)
    return file


def save_rows(rows: Sequence[Tensor], file: Path, scale: int = 1) -> Path:
    """Equal-length image sets `(K, C, H, W)` stacked as the rows of one grid (e.g. truth,
    degraded, restored)."""
    import torch

    k = rows[0].shape[0]
    return save_grid(torch.cat([r[:k] for r in rows]), file, nrow=k, scale=scale)


def upscale_for_display(x: Tensor, size: int) -> Tensor:
    """Nearest-neighbour resize of `x (N, C, h, w)` to `size` (degraded SR inputs in a grid)."""
    import torch.nn.functional as F

    return F.interpolate(x.float(), size=(size, size), mode="nearest")
