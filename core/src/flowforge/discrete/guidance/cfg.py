"""Classifier-free guidance on the clean-token log-probabilities of a discrete model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field

from flowforge.discrete.guidance.base import DiscreteGuidance
from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class DiscreteCFG(DiscreteGuidance):
    """CFG for discrete diffusion (Nisonoff et al. 2024; Schiff et al. 2024), on logits:

        log p_w = log_softmax(log p_u + w (log p_c - log p_u))

    with `p_c` the model under the solve's condition and `p_u` under the null condition (every
    conditioning keyword None, or `null_cond`). Tokens carried over by SUBS stay as they are.
    `scale` w >= 0: 1 the conditional model, 0 the unconditional one. Each evaluation makes a
    second network call, counted in the result's `nfe`.

    >>> sample(model, x, path=p, solver="ancestral", nfe=64, cond={"label": y},
    ...        guidance=DiscreteCFG(scale=2.0))
    """

    scale: Annotated[float, Field(ge=0, description="guidance scale w: 1 = conditional model")]
    null_cond: Annotated[
        dict[str, Any] | None,
        Field(description="keywords of the unconditional call (default: each condition None)"),
    ] = None

    def on_log_probs(self, log_p, x_t, t, cond, dynamics):
        if self.scale == 1.0:
            return log_p
        if self.null_cond is None and not cond:
            raise InvalidArgumentError(
                "discrete_cfg guides a conditional model, but this solve has no condition: pass "
                "cond={...} to flowforge.discrete.sample, or give discrete_cfg a null_cond"
            )
        null = self.null_cond if self.null_cond is not None else dict.fromkeys(cond)
        log_u = dynamics.network(x_t, t, null)
        both = torch.isfinite(log_p) & torch.isfinite(log_u)
        diff = torch.where(both, log_p - log_u, torch.zeros_like(log_p))
        return torch.log_softmax(log_p + (self.scale - 1.0) * diff, dim=-1)
