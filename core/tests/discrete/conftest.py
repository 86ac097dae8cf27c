"""Small discrete models for the discrete-diffusion tests: an exact denoiser of a joint table and
a tiny bidirectional network."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from flowforge.discrete import MaskedPath


class ExactDenoiser:
    """The exact `p(x_1^l | revealed tokens)` of a joint distribution over `V^L` sequences.

    Time-independent (it ignores `t`), so every sampler and the cache are exact with it; calls
    are counted.
    """

    time_conditioned = False

    def __init__(self, probs: Tensor, vocab: int, length: int):
        self.probs = probs.double() / probs.sum()
        self.vocab, self.length = vocab, length
        self.table = torch.tensor(list(itertools.product(range(vocab), repeat=length)))
        self.calls = 0

    def __call__(self, x_t: Tensor, t: Tensor) -> Tensor:
        self.calls += 1
        # (B, S): which table sequences agree with the revealed tokens of each row
        revealed = x_t < self.vocab
        agree = ((self.table[None] == x_t[:, None]) | ~revealed[:, None]).all(-1)
        weight = agree.double() * self.probs[None]
        onehot = nn.functional.one_hot(self.table, self.vocab).double()  # (S, L, V)
        marg = torch.einsum("bs,slv->blv", weight, onehot)
        return marg.clamp_min(1e-300).log().float()


def random_joint(vocab: int, length: int, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(vocab**length, generator=gen) + 0.25


class TinyNet(nn.Module):
    """A bidirectional MLP over the one-hot sequence: `(B, L)` tokens -> `(B, L, V)` logits.

    `time_input=False` makes it time-independent (RADD) and sets `time_conditioned = False`.
    """

    def __init__(self, vocab: int, length: int, width: int = 128, time_input: bool = True):
        super().__init__()
        self.vocab, self.length, self.time_conditioned = vocab, length, time_input
        states = vocab + 1
        self.net = nn.Sequential(
            nn.Linear(length * states + int(time_input), width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, length * vocab),
        )

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        h = nn.functional.one_hot(x_t, self.vocab + 1).float().flatten(1)
        if self.time_conditioned:
            h = torch.cat([h, t.float()[:, None]], dim=1)
        return self.net(h).reshape(-1, self.length, self.vocab)


def masked(vocab: int) -> MaskedPath:
    return MaskedPath(vocab_size=vocab)
