"""PSNR and SSIM of restored images (scikit-image), always with an explicit data range."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def psnr_ssim(truth: Tensor, estimate: Tensor, data_range: float = 1.0) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over images `(M, C, H, W)` with intensities spanning `data_range`.

    SSIM uses scikit-image's default 7x7 window, or the largest odd window that fits smaller
    images (8x8 digits: 7).
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    t = truth.double().cpu().numpy()
    x = estimate.double().cpu().numpy()
    win = min(7, *(s - (1 - s % 2) for s in t.shape[-2:]))
    psnr = [peak_signal_noise_ratio(a, b, data_range=data_range) for a, b in zip(t, x, strict=True)]
    ssim = [
        structural_similarity(a, b, data_range=data_range, channel_axis=0, win_size=win)
        for a, b in zip(t, x, strict=True)
    ]
    return float(np.mean(psnr)), float(np.mean(ssim))
