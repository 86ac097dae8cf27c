"""Early stopping by validation: keep the weights with the lowest held-out bits per token.

A small corpus trained for many epochs overfits, the autoregressive baseline far sooner than
masked diffusion (whose random masks act as augmentation), so comparing both at the end of equal
training time compares an overfitted AR model. Pass a `KeepBest` as `evaluate` to
`Trainer.fit` (with `train.eval_every` set): the trainer calls it with the EMA weights loaded.

>>> keep = KeepBest(splits["val"], "autoregressive", path)
>>> trainer.fit(evaluate=keep); model.load_state_dict(keep.state)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from flowforge.discrete import DiscretePath
from flowforge_discrete.metrics.nll import held_out_bits


@dataclass
class KeepBest:
    """Bits/token of `held_out (N, L)` under the model at each call (`kind` diffusion: the bound
    with `num_timesteps` times per sequence and the same seeded draws every call, so calls are
    compared on common randomness; autoregressive: exact). `history` the values in call order;
    `best`, `best_call` (0-based) and `state` (a copy of the weights) those of the lowest."""

    held_out: Tensor
    kind: str
    path: DiscretePath
    num_timesteps: int = 4
    seed: int = 0
    history: list[float] = field(default_factory=list)
    best: float = math.inf
    best_call: int = -1
    state: dict[str, Tensor] | None = None

    def __call__(self, model: nn.Module) -> dict[str, float]:
        device = self.held_out.device
        bits = held_out_bits(
            model,
            self.kind,
            self.held_out,
            self.path,
            num_timesteps=self.num_timesteps,
            generator=torch.Generator(device).manual_seed(self.seed),
        )
        self.history.append(bits)
        if bits < self.best:
            self.best, self.best_call = bits, len(self.history) - 1
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return {"held_out_bits_per_token": bits}
