"""The autoregressive baseline: the same transformer, causal, trained by the same core Trainer.

Input row `[BOS, x_1, ..., x_{L-1}]` (BOS = id `vocab_size`, the slot the masked path uses for
its mask) predicts `[x_1, ..., x_L]`; the loss is the exact negative log-likelihood per token,
so its test value is the baseline's bits per token. Sampling draws one position per call
(`L` calls, no key-value cache).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.discrete import inverse_cdf
from flowforge.training.objective import Batch, Network, Objective


def shift_right(x: Tensor, bos: int) -> Tensor:
    """`[BOS, x_1 .. x_{L-1}]` for `x (B, L)`."""
    return torch.cat([torch.full_like(x[:, :1], bos), x[:, :-1]], dim=1)


def token_nll(model: Callable[..., Tensor], x: Tensor, bos: int) -> Tensor:
    """Exact `-log p(x_l | x_<l)` `(B, L)` under the causal `model`."""
    logits = model(shift_right(x, bos), torch.zeros(x.shape[0], device=x.device))
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -log_p.gather(-1, x.unsqueeze(-1)).squeeze(-1)


class Autoregressive(Objective):
    """Next-token cross-entropy on `data (N, L)` (nats per token), for `flowforge.training`."""

    def __init__(self, data: Tensor, vocab_size: int):
        self.data, self.bos = data, vocab_size

    def draw(self, n: int, generator: torch.Generator, part: slice | None = None) -> Batch:
        idx = torch.randint(
            0, self.data.shape[0], (n,), generator=generator, device=self.data.device
        )
        batch = {"x": self.data[idx]}
        return batch if part is None else {"x": batch["x"][part]}

    def loss(self, network: Network, batch: Batch) -> Tensor:
        return token_nll(network, batch["x"], self.bos).mean(dim=1)


@torch.no_grad()
def nll(model: Callable[..., Tensor], x: Tensor, bos: int, batch_size: int = 256) -> Tensor:
    """Exact per-sequence NLL in nats `(N,)`."""
    parts = [
        token_nll(model, x[i : i + batch_size], bos).sum(1) for i in range(0, len(x), batch_size)
    ]
    return torch.cat(parts).double()


@torch.no_grad()
def sample(
    model: Callable[..., Tensor], n: int, length: int, bos: int, generator: torch.Generator, device
) -> tuple[Tensor, int]:
    """`n` sequences `(n, L)` drawn token by token; returns them and the calls made (`L`)."""
    x = torch.full((n, length), bos, dtype=torch.long, device=device)
    t = torch.zeros(n, device=device)
    for i in range(length):
        logits = model(shift_right(x, bos)[:, : i + 1], t)[:, -1]
        u = torch.rand(n, 1, generator=generator, device=device, dtype=torch.float64)
        x[:, i] = inverse_cdf(torch.log_softmax(logits.float(), -1)[:, None], u).squeeze(1)
    return x, length
