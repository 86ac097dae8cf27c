"""Likelihoods of masked diffusion models: the ELBO's NLL upper bound and any-order AR exactly.

`nll_bound` estimates the continuous-time bound of `losses` by Monte Carlo with `num_timesteps`
stratified times per sequence (unbiased for any number; its spread shrinks as it grows).
`any_order_nll` is the exact negative log-likelihood of the any-order autoregressive model the
masked model defines for a given order of positions (`L` calls per order): RADD (Ou et al. 2024)
shows that its expectation over uniformly random orders equals the bound for a time-independent
model, which the tests check on small models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.discrete.losses import diffusion_loss, token_nll
from flowforge.discrete.paths import DiscretePath, MaskedPath
from flowforge.discrete.subs import clean_log_probs
from flowforge.errors import InvalidArgumentError

LOG2 = 0.6931471805599453


@dataclass(frozen=True)
class NLLBound:
    """Per-sequence bound `nats (N,)` and real-token counts `tokens (N,)`; `num_timesteps` the
    Monte Carlo times per sequence; `bits_per_token` the data-set total in bits per token."""

    nats: Tensor
    tokens: Tensor
    num_timesteps: int

    @property
    def bits_per_token(self) -> float:
        return float(self.nats.sum() / self.tokens.sum()) / LOG2


def _masked(path: DiscretePath) -> MaskedPath:
    if not isinstance(path, MaskedPath):
        raise InvalidArgumentError(
            f"likelihoods are implemented for the masked path, not {type(path).__name__}"
        )
    return path


def _valid(x: Tensor, pad_id: int | None) -> Tensor:
    return torch.ones_like(x, dtype=torch.bool) if pad_id is None else x != pad_id


@torch.no_grad()
def nll_bound(
    model: Callable[..., Tensor],
    x_1: Tensor,
    path: DiscretePath,
    *,
    num_timesteps: int,
    generator: torch.Generator,
    pad_id: int | None = None,
    batch_size: int = 256,
) -> NLLBound:
    """MC estimate of the ELBO bound `-log p(x) <=` for each sequence of `x_1 (N, L)`.

    Times are stratified: the k-th of K lies in `[k/K, (k+1)/K)`, so K = `num_timesteps` calls
    per sequence give an unbiased estimate with lower variance than independent times.
    """
    path = _masked(path)
    nats = torch.zeros(x_1.shape[0], dtype=torch.float64, device=x_1.device)
    for start in range(0, x_1.shape[0], batch_size):
        x = x_1[start : start + batch_size]
        valid = _valid(x, pad_id)
        for k in range(num_timesteps):
            u = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=torch.float64)
            t = ((k + u) / num_timesteps).clamp(max=1 - 1e-6)
            x_t = path.corrupt(x, t, generator, valid)
            log_p = clean_log_probs(model(x_t, t.float()), x_t, path)
            nats[start : start + x.shape[0]] += diffusion_loss(log_p, x, x_t, t, path, valid)
    return NLLBound(nats / num_timesteps, _valid(x_1, pad_id).sum(dim=1), num_timesteps)


@torch.no_grad()
def any_order_nll(
    model: Callable[..., Tensor],
    x_1: Tensor,
    path: DiscretePath,
    order: Tensor,
    *,
    pad_id: int | None = None,
) -> Tensor:
    """Exact `-log p_order(x_1)` `(B,)` of the any-order AR model in the order `order (B, L)`.

    Position `order[:, i]` is predicted from the tokens at `order[:, :i]` with all others
    masked; padding is never masked nor scored. The model is given `t = i / L`, the fraction
    revealed (a time-independent model ignores it).
    """
    path = _masked(path)
    batch, length = x_1.shape
    valid = _valid(x_1, pad_id)
    rows = torch.arange(batch, device=x_1.device)
    x_t = torch.where(valid, torch.full_like(x_1, path.mask_id), x_1)
    nll = torch.zeros(batch, dtype=torch.float64, device=x_1.device)
    for i in range(length):
        pos = order[:, i]
        t = torch.full((batch,), i / length, device=x_1.device)
        log_p = clean_log_probs(model(x_t, t), x_t, path)
        step = token_nll(log_p[rows, pos].unsqueeze(1), x_1[rows, pos].unsqueeze(1)).squeeze(1)
        nll += torch.where(valid[rows, pos], step.double(), 0.0)
        x_t = x_t.clone()
        x_t[rows, pos] = x_1[rows, pos]
    return nll


def random_orders(batch: int, length: int, generator: torch.Generator, device=None) -> Tensor:
    """`(batch, length)` uniformly random permutations of the positions."""
    keys = torch.rand(batch, length, generator=generator, device=device)
    return keys.argsort(dim=1)
