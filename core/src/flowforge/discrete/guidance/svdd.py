"""Soft value-based decoding (SVDD; Li et al. 2024): derivative-free guidance by a reward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from torch import Tensor

from flowforge.discrete.guidance.base import DiscreteGuidance


@dataclass(frozen=True)
class SVDD(DiscreteGuidance):
    """At each step draw `num_candidates` next states with the solver, score each by the reward
    of its denoised estimate, and keep one per sample with probability softmax(value / alpha).

    The value of a candidate `x_s` is `reward(x_hat)` where `x_hat` fills its corrupted tokens
    with the most likely clean token under the model (SVDD-PM, the posterior-mean value); so
    no reward gradient is needed and the reward may be any black box (validity, a property
    predictor). `alpha -> 0` keeps the best candidate. Costs one extra batched model call per
    step (on `num_candidates * B` sequences), counted in `nfe`.

    `reward(tokens (B, L) int64) -> (B,)` float, higher is better.

    >>> sample(model, x, path=p, solver="ancestral", nfe=64,
    ...        guidance=SVDD(reward=lambda x: (x == 3).float().sum(1), num_candidates=8))
    """

    num_candidates: Annotated[int, Field(ge=1, description="candidate next states per sample")] = 8
    alpha: Annotated[float, Field(ge=0, description="temperature of the selection (0: best)")] = 0.0
    reward: SkipJsonSchema[Callable[[Tensor], Tensor] | None] = None

    @property
    def needs(self) -> tuple[str, ...]:
        return ("reward",) if self.reward is None else ()

    def around_step(self, advance, x, t0, t1, dynamics):
        batch, m = x.shape[0], self.num_candidates
        candidates = torch.stack([advance(x) for _ in range(m)])  # (M, B, L)
        flat = candidates.reshape(m * batch, -1)
        t = t1.repeat(m)
        log_p = dynamics.network(flat, t, {k: _tile(v, m, batch) for k, v in dynamics.cond.items()})
        open_ = torch.stack([dynamics.eligible(c) for c in candidates]).reshape(m * batch, -1)
        denoised = torch.where(open_, log_p.argmax(-1), flat)
        value = self.reward(denoised).to(torch.float64).reshape(m, batch)
        if self.alpha == 0:
            pick = value.argmax(0)
        else:
            weights = torch.softmax(value / self.alpha, dim=0).T
            gen = dynamics.generator
            pick = torch.multinomial(weights, 1, generator=gen).squeeze(1)
        return candidates[pick, torch.arange(batch, device=x.device)]


def _tile(value, m: int, batch: int):
    if isinstance(value, Tensor) and value.ndim and value.shape[0] == batch:
        return value.repeat(m, *([1] * (value.ndim - 1)))
    return value
