"""Bits per token on held-out data: the diffusion ELBO bound (MC timesteps stated) or the
autoregressive baseline's exact likelihood."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.discrete import nll_bound
from flowforge.metrics.base import Metric
from flowforge_discrete import autoregressive
from flowforge_discrete.metrics.context import SequenceContext

LOG2 = 0.6931471805599453


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
        if ctx.kind == "autoregressive":
            nats = autoregressive.nll(ctx.model, test, ctx.dataset.vocab_size)
            return {
                "nll_bits_per_token": float(nats.sum()) / test.numel() / LOG2,
                "nll_num_timesteps": 0.0,
            }
        bound = nll_bound(
            ctx.model, test, ctx.path, num_timesteps=self.num_timesteps, generator=ctx.generator
        )
        return {
            "nll_bits_per_token": bound.bits_per_token,
            "nll_num_timesteps": float(self.num_timesteps),
        }
