"""Bits per token on held-out data: the diffusion ELBO bound (MC timesteps stated) or the
autoregressive baseline's exact likelihood."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from flowforge.discrete import DiscretePath, nll_bound
from flowforge.metrics.base import Metric
from flowforge_discrete import autoregressive
from flowforge_discrete.metrics.context import SequenceContext

LOG2 = 0.6931471805599453


def held_out_bits(
    model: Callable[..., Tensor],
    kind: str,
    x: Tensor,
    path: DiscretePath,
    *,
    num_timesteps: int,
    generator: torch.Generator,
) -> float:
    """Bits per token of `x (N, L)`: the autoregressive model's exact NLL (`kind`
    autoregressive; BOS is the path's mask id, `vocab_size`) or the masked-diffusion bound
    with `num_timesteps` stratified Monte Carlo times per sequence."""
    if kind == "autoregressive":
        return float(autoregressive.nll(model, x, path.vocab).sum()) / x.numel() / LOG2
    return nll_bound(
        model, x, path, num_timesteps=num_timesteps, generator=generator
    ).bits_per_token


@dataclass(frozen=True)
class NLLBits(Metric):
    """`nll_bits_per_token` of the test split: the upper bound of masked diffusion estimated with
    `num_timesteps` stratified times per sequence (`nll_num_timesteps`), or the exact NLL of the
    autoregressive model (`nll_num_timesteps` 0). Padding counts as a token (it ends a SMILES)."""

    num_timesteps: Annotated[int, Field(ge=1, description="Monte Carlo times per sequence")] = 8
    max_sequences: Annotated[int | None, Field(ge=1, description="evaluate this many at most")] = (
        None
    )

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        test = ctx.test[: self.max_sequences].to(ctx.device)
        bits = held_out_bits(
            ctx.model,
            ctx.kind,
            test,
            ctx.path,
            num_timesteps=self.num_timesteps,
            generator=ctx.generator,
        )
        steps = 0.0 if ctx.kind == "autoregressive" else float(self.num_timesteps)
        return {"nll_bits_per_token": bits, "nll_num_timesteps": steps}
