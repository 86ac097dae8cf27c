"""Sampling speed: samples per second and network calls at several NFE, with and without the
RADD/MDLM cache (the cache needs a time-independent model; otherwise only uncached runs)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field

from flowforge.discrete import sample, time_independent
from flowforge.metrics.base import Metric
from flowforge_discrete.metrics.context import SequenceContext


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_sample(ctx: SequenceContext, solver: str, nfe: int, n: int, seed: int = 0):
    """Draw `n` samples; returns (result, seconds). Both solvers see the same seed."""
    length = ctx.test.shape[1]
    gen = torch.Generator(ctx.device).manual_seed(seed)
    x = ctx.path.source((n, length), gen, ctx.device)
    _sync(ctx.device)
    start = time.perf_counter()
    out = sample(ctx.model, x, path=ctx.path, solver=solver, nfe=nfe, generator=gen)
    _sync(ctx.device)
    return out, time.perf_counter() - start


@dataclass(frozen=True)
class SamplingSpeed(Metric):
    """For each NFE in `nfes`: `speed_<nfe>_samples_per_s` (ancestral), and with the cache
    `speed_<nfe>_cached_samples_per_s`, `speed_<nfe>_cached_calls`,
    `speed_<nfe>_cached_evals_per_sample` and `speed_<nfe>_cached_identical` (1 when both gave
    the same samples)."""

    nfes: Annotated[list[int], Field(min_length=1, description="step counts to time")] = (
        32,
        128,
        512,
    )
    num_samples: Annotated[int, Field(ge=1, description="samples per timing")] = 64

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        if ctx.kind != "diffusion":
            return {}
        out = {}
        for nfe in self.nfes:
            plain, sec = timed_sample(ctx, "ancestral", nfe, self.num_samples)
            out[f"speed_{nfe}_samples_per_s"] = self.num_samples / sec
            out[f"speed_{nfe}_calls"] = float(plain.nfe)
            if time_independent(ctx.model):
                cached, csec = timed_sample(ctx, "mdlm_cached", nfe, self.num_samples)
                out[f"speed_{nfe}_cached_samples_per_s"] = self.num_samples / csec
                out[f"speed_{nfe}_cached_calls"] = float(cached.nfe)
                out[f"speed_{nfe}_cached_evals_per_sample"] = cached.nfe_per_sample
                out[f"speed_{nfe}_cached_identical"] = float(torch.equal(plain.x, cached.x))
        return out
