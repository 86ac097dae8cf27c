"""Markov chains over tokens: sequence distributions whose likelihood and entropy are exact.

An order-`k` chain draws its first `k` tokens uniformly and independently, then each token from
`trans[previous k tokens]`. Its exact log-likelihood, next-token conditionals and entropy per
token are ground truth for discrete models: a trained model's NLL (or NLL bound) on held-out
sequences must sit at or above the entropy, and an autoregressive model built from the exact
conditionals must reproduce the exact log-likelihood.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


class MarkovChain:
    """Order-`k` chain on `V` symbols: `trans` of shape `(V,) * (k + 1)`, `trans[a, b, :]` the
    distribution of the next token after `a, b` (k = 2); rows are normalised.

    >>> chain = MarkovChain(trans)                      # (3, 3, 3): order 2 on 3 symbols
    >>> x = chain.sample(1000, 16, torch.Generator().manual_seed(0))   # (1000, 16) int64
    >>> chain.log_prob(x), chain.entropy_bits_per_token(16)
    """

    def __init__(self, trans: Tensor):
        trans = torch.as_tensor(trans, dtype=torch.float64)
        vocab = trans.shape[-1]
        if trans.ndim < 2 or any(s != vocab for s in trans.shape) or bool((trans < 0).any()):
            raise InvalidArgumentError(
                f"trans must be a non-negative (V,) * (k + 1) table, got shape {tuple(trans.shape)}"
            )
        self.trans = trans / trans.sum(-1, keepdim=True)
        self.order, self.vocab = trans.ndim - 1, vocab

    def _context(self, x: Tensor, i: int) -> Tensor:
        """Flat index `(B,)` of the `k` tokens before position `i` (i >= k)."""
        index = torch.zeros_like(x[:, 0])
        for j in range(i - self.order, i):
            index = index * self.vocab + x[:, j]
        return index

    def sample(self, n: int, length: int, generator: torch.Generator) -> Tensor:
        """`(n, length)` int64 sequences."""
        table = self.trans.reshape(-1, self.vocab)
        x = torch.randint(0, self.vocab, (n, length), generator=generator)
        for i in range(self.order, length):
            probs = table[self._context(x, i)]
            x[:, i] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return x

    def next_log_probs(self, x: Tensor) -> Tensor:
        """`log p(x_i = v | x_<i)` `(B, L, V)` (float64); position `i` reads only `x[:, :i]`."""
        table = self.trans.to(x.device).reshape(-1, self.vocab).log()
        out = torch.full((*x.shape, self.vocab), -math.log(self.vocab), dtype=torch.float64)
        out = out.to(x.device)
        for i in range(self.order, x.shape[1]):
            out[:, i] = table[self._context(x, i)]
        return out

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact `log p(x)` `(B,)` in nats of sequences `x (B, L)`."""
        return self.next_log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(1)

    def entropy_bits_per_token(self, length: int) -> float:
        """Exact `H(X_1, ..., X_length) / length` in bits (the context distribution is carried
        forward step by step, so any table is exact, not only stationary ones)."""
        table = self.trans.reshape(-1, self.vocab)
        row_entropy = -(table * table.clamp_min(1e-300).log2()).sum(-1)
        contexts = self.vocab**self.order
        p = torch.full((contexts,), 1.0 / contexts, dtype=torch.float64)
        total = min(length, self.order) * math.log2(self.vocab)
        for _ in range(self.order, length):
            total += float(p @ row_entropy)
            # next context: drop the oldest token, append the new one
            joint = (p[:, None] * table).reshape(self.vocab, -1, self.vocab)
            p = joint.sum(0).reshape(-1)
        return total / length
