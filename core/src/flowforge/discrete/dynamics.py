"""What a discrete solver evaluates: model + path + guidance, with honest call counts and caching.

`log_probs(x_t, t, need)` returns `log p(x_1 | x_t)` `(B, L, vocab_size)` (SUBS applied, then the
guidance hooks). With `cache=True` (the RADD/MDLM cached sampler) the network runs only on the
rows in `need` whose tokens changed since their last evaluation; the other rows reuse that
evaluation, which is exact for a time-independent model (Ou et al. 2024, "Your absorbing discrete
diffusion secretly models the conditional distributions of clean data"). Choosing rows reads a
device value on the host, so a cached solve is not graph-capturable.

`nfe` counts network calls actually made (guidance's extra calls included); `rows` counts the
sequences that went through the network, so `rows / B` is the evaluations per sample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from flowforge.discrete.paths import DiscretePath, MaskedPath
from flowforge.discrete.subs import clean_log_probs
from flowforge.field import take_rows


class DiscreteDynamics:
    """The context of one discrete solve (see the module docstring).

    `frozen (B, L)` bool: positions no step may change (padding, clamped tokens of infilling).
    """

    def __init__(
        self,
        model: Callable[..., Tensor],
        path: DiscretePath,
        guidance: Sequence[Any] = (),
        cond: Mapping[str, Any] | None = None,
        cache: bool = False,
    ):
        self.model = model
        self.path = path
        self.guidance = tuple(guidance)
        self.cond = dict(cond or {})
        self.cache = cache
        self.nfe = 0
        self.rows = 0
        self.frozen: Tensor | None = None
        self.generator: torch.Generator | None = None
        self._memo: tuple[Tensor, Tensor, Tensor] | None = None
        self._seen: Tensor | None = None
        self._out: Tensor | None = None

    def network(self, x_t: Tensor, t: Tensor, cond: Mapping[str, Any] | None = None) -> Tensor:
        """Clean-token log-probabilities of the bare model (no guidance); counted in `nfe`."""
        self.nfe += 1
        self.rows += x_t.shape[0]
        logits = self.model(x_t, t, **(self.cond if cond is None else cond))
        return clean_log_probs(logits, x_t, self.path)

    def _evaluate(self, x_t: Tensor, t: Tensor, index: Tensor | None) -> Tensor:
        if index is None:
            cond, x, tt = self.cond, x_t, t
        else:
            cond = {k: take_rows(v, index, self.batch) for k, v in self.cond.items()}
            x, tt = x_t[index], t[index]
        log_p = self.network(x, tt, cond)
        for g in self.guidance:
            log_p = g.on_log_probs(log_p, x, tt, cond, self)
        return log_p

    def log_probs(self, x_t: Tensor, t: Tensor, need: Tensor | None = None) -> Tensor:
        """`(B, L, V)` log p(x_1 | x_t); when caching, rows outside `need (B,)` may be stale."""
        self.batch = x_t.shape[0]
        if self.cache:
            return self._cached(x_t, t, need)
        memo = self._memo
        if memo is not None and memo[0] is x_t and memo[1] is t:
            return memo[2]  # the same state at the same time (SVDD's candidates): no new call
        out = self._evaluate(x_t, t, None)
        self._memo = (x_t, t, out)
        return out

    def _cached(self, x_t: Tensor, t: Tensor, need: Tensor | None) -> Tensor:
        if self._seen is None:
            self._seen = torch.full_like(x_t, -1)
        stale = (x_t != self._seen).any(dim=1)
        index = (stale if need is None else stale & need).nonzero().squeeze(1)
        if index.numel():
            fresh = self._evaluate(x_t, t, index)
            if self._out is None:
                self._out = fresh.new_zeros((*x_t.shape, fresh.shape[-1]))
            self._out[index] = fresh
            self._seen[index] = x_t[index]
        if self._out is None:
            self._out = torch.zeros((*x_t.shape, self.path.vocab), device=x_t.device)
        return self._out

    def eligible(self, x: Tensor) -> Tensor:
        """Bool `(B, L)`: positions a step may change (masked ones for the masked path)."""
        if isinstance(self.path, MaskedPath):
            free = x == self.path.mask_id
        else:
            free = torch.ones_like(x, dtype=torch.bool)
        return free if self.frozen is None else free & ~self.frozen
