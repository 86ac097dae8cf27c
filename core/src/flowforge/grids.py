"""Time grids for fixed-step solvers: `uniform`, `logsnr`, `edm`, `auto`, or an explicit tensor.

A grid is a tensor `(steps + 1, B)`: one column per sample, so per-sample `t_span`s work with
every fixed-step solver. Grids are built with tensor arithmetic on the device (no host sync),
and their first and last rows are exactly `t0` and `t1`.

- `uniform`: equal steps in t.
- `logsnr`: equal steps in log-SNR (DPM-Solver's "logSNR" schedule).
- `edm`: Karras et al. (2022): equal steps in r^(1/7), r = sigma/alpha (the noise level of
  the equivalent variance-exploding path).
- `auto`: the path's `recommended_grid` where it declares one (`cond_ot`: `uniform`, for every
  solver), else the solver's `default_grid` (diffusion paths: `vp_*`, `ve`, `edm`).

Ends where the log-SNR is (nearly) infinite: a pure-noise start (alpha = 0) and an exact data
end (sigma = 0) cannot be spaced in log-SNR. Such an end stays an extra grid point, and the
other points are spaced over EDM's noise range `sigma/alpha in [0.002, 80]` (log-SNR -8.8 to
12.4), as EDM itself appends sigma = 0 after its last noise level: a first step from pure noise
to sigma/alpha = 80 and a last step from 0.002 to the data. Finite ends beyond +-20 are
clamped the same way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, Path

GRIDS = ("uniform", "logsnr", "edm", "auto")
LOG_SNR_LIMIT = 20.0
EDM_RHO = 7.0
# EDM's noise range sigma/alpha in [0.002, 80], as log-SNR: where infinite ends are spaced.
NOISE_RANGE = (-2 * math.log(80.0), -2 * math.log(0.002))


def check_grid_name(value: str) -> str:
    """`value` if it names a time grid (one of `GRIDS`, or a .json file of times such as
    `flowforge tune` saves); else `InvalidArgumentError` listing them."""
    if value not in GRIDS and not value.endswith(".json"):
        raise InvalidArgumentError(
            f"{value!r} is not a time grid: use one of {', '.join(GRIDS)}, or the path of a "
            ".json grid saved by `flowforge tune`"
        )
    return value


def _fractions(steps: int, like: Tensor) -> Tensor:
    return torch.linspace(0.0, 1.0, steps + 1, dtype=like.dtype, device=like.device)[:, None]


def _spaced_log_snr(path: AffinePath, t0: Tensor, t1: Tensor, steps: int) -> tuple[Tensor, ...]:
    """Per sample: the log-SNR range to space points over, and the fraction of each row in it.

    An end beyond +-LOG_SNR_LIMIT is an extra point: the remaining rows are spaced over the
    range with that end moved to NOISE_RANGE (kept inside the span). Returns `(lo, hi, frac)`
    with `frac (steps + 1, B)`; rows 0 and `steps` are replaced by t0 and t1 by the caller.
    """
    lam0, lam1 = path.log_snr(t0), path.log_snr(t1)
    low, high = lam0 < -LOG_SNR_LIMIT, lam1 > LOG_SNR_LIMIT
    hi_finite = torch.where(high, torch.full_like(lam1, NOISE_RANGE[1]), lam1)
    lo = torch.where(low, torch.clamp(hi_finite - 2.0, max=NOISE_RANGE[0]), lam0)
    hi = torch.where(high, torch.clamp(lo + 2.0, min=NOISE_RANGE[1]), lam1)
    first, last = low.to(t0.dtype), high.to(t0.dtype)
    spaced = steps - first - last
    rows = torch.arange(steps + 1, dtype=t0.dtype, device=t0.device)[:, None]
    frac = torch.where(spaced > 0, (rows - first) / spaced.clamp(min=1), torch.full_like(rows, 0.5))
    return lo, hi, frac.clamp(0.0, 1.0)


def resolve_grid(kind: str, path: Path, default: str) -> str:
    """The named grid `kind` stands for: `auto` is the path's `recommended_grid`, else `default`
    (the solver's `default_grid`); any other name is itself."""
    if kind not in GRIDS:
        raise InvalidArgumentError(
            f"unknown time_grid {kind!r}; use one of {', '.join(GRIDS)} or a tensor of times"
        )
    if kind != "auto":
        return kind
    return path.recommended_grid or default


def make_grid(
    kind: str | Tensor, path: Path, t0: Tensor, t1: Tensor, steps: int, default: str
) -> Tensor:
    """The `(steps + 1, B)` grid from `t0 (B,)` to `t1 (B,)`; `auto` as `resolve_grid` says,
    with `default` the solver's `default_grid`."""
    if isinstance(kind, Tensor):
        return _explicit(kind, t0, t1, steps)
    kind = resolve_grid(kind, path, default)
    frac = _fractions(steps, t0)
    if kind == "uniform":
        grid = t0 + frac * (t1 - t0)
    else:
        if not isinstance(path, AffinePath):
            raise InvalidArgumentError(f"time_grid {kind!r} needs an affine path (it uses log-SNR)")
        lam0, lam1, frac = _spaced_log_snr(path, t0, t1, steps)
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
