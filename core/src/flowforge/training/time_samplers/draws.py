"""Uniform variates on [0, 1) for a batch: independent, stratified, or low-discrepancy.

Every time sampler turns these into times by its inverse CDF, so each option applies to every
sampler. All three give each variate the uniform marginal (so `density` describes the times of
any option); stratified and low-discrepancy batches cover [0, 1) more evenly, which lowers the
variance of the batch loss.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError

Draws = Literal["iid", "stratified", "low_discrepancy"]

# The additive recurrence with the golden ratio (Weyl/Kronecker, "R1") spreads any run of
# consecutive points evenly, so a batch split into micro-batches stays even in each part.
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def unit_draws(draws: Draws, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """`n` variates `(n,)` float64 in [0, 1), from `generator` on `device`.

    - `iid`: independent uniforms.
    - `stratified`: one uniform in each of the `n` strata `[i/n, (i+1)/n)`, in random order.
    - `low_discrepancy`: `frac(u0 + i * (sqrt(5) - 1) / 2)`, i = 0..n-1, with one random `u0`.
    """
    kw = {"generator": generator, "device": device, "dtype": torch.float64}
    if draws == "iid":
        return torch.rand(n, **kw)
    if draws == "stratified":
        strata = torch.randperm(n, generator=generator, device=device).to(torch.float64)
        return (strata + torch.rand(n, **kw)) / n
    if draws == "low_discrepancy":
        steps = torch.arange(n, device=device, dtype=torch.float64) * GOLDEN
        return torch.remainder(torch.rand(1, **kw) + steps, 1.0)
    raise InvalidArgumentError(
        f"time_sampler.params.draws must be iid, stratified or low_discrepancy, got {draws!r}"
    )
