"""Time grids for fixed-step solvers: `uniform`, `logsnr`, `edm`, `auto`, or an explicit tensor.

A grid is a tensor `(steps + 1, B)`: one column per sample, so per-sample `t_span`s work with
every fixed-step solver. Grids are built with tensor arithmetic on the device (no host sync),
and their first and last rows are exactly `t0` and `t1`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, Path

GRIDS = ("uniform", "logsnr", "edm", "auto")
LOG_SNR_LIMIT = 20.0
EDM_RHO = 7.0


def _fractions(steps: int, like: Tensor) -> Tensor:
    return torch.linspace(0.0, 1.0, steps + 1, dtype=like.dtype, device=like.device)[:, None]


def _clamped_log_snr(path: AffinePath, t: Tensor) -> Tensor:
    return path.log_snr(t).clamp(-LOG_SNR_LIMIT, LOG_SNR_LIMIT)


def make_grid(
    kind: str | Tensor, path: Path, t0: Tensor, t1: Tensor, steps: int, default: str
) -> Tensor:
    """The `(steps + 1, B)` grid from `t0 (B,)` to `t1 (B,)`; `default` resolves `auto`."""
    if isinstance(kind, Tensor):
        return _explicit(kind, t0, t1, steps)
    if kind not in GRIDS:
        raise InvalidArgumentError(
            f"unknown time_grid {kind!r}; use one of {', '.join(GRIDS)} or a tensor of times"
        )
    kind = default if kind == "auto" else kind
    frac = _fractions(steps, t0)
    if kind == "uniform":
        grid = t0 + frac * (t1 - t0)
    else:
        if not isinstance(path, AffinePath):
            raise InvalidArgumentError(f"time_grid {kind!r} needs an affine path (it uses log-SNR)")
        lam0, lam1 = _clamped_log_snr(path, t0), _clamped_log_snr(path, t1)
        if kind == "logsnr":
            grid = path.t_from_log_snr(lam0 + frac * (lam1 - lam0))
        else:
            # Karras et al. (2022): uniform in r^(1/rho) with r = sigma/alpha = exp(-lam/2).
            r0, r1 = torch.exp(-lam0 / (2 * EDM_RHO)), torch.exp(-lam1 / (2 * EDM_RHO))
            lam = -2 * EDM_RHO * torch.log(r0 + frac * (r1 - r0))
            grid = path.t_from_log_snr(lam)
    grid = grid.clone()
    grid[0], grid[-1] = t0, t1
    return grid


def _explicit(times: Tensor, t0: Tensor, t1: Tensor, steps: int) -> Tensor:
    times = times.to(device=t0.device, dtype=t0.dtype)
    if times.ndim == 1:
        times = times[:, None].expand(-1, t0.shape[0])
    if times.ndim != 2 or times.shape != (steps + 1, t0.shape[0]):
        raise InvalidArgumentError(
            f"an explicit time_grid must have shape ({steps + 1},) or "
            f"({steps + 1}, B={t0.shape[0]}) "
            f"for {steps} steps (set by nfe); got {tuple(times.shape)}"
        )
    return times
