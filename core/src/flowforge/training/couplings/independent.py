"""The independent coupling: noise and data drawn independently (plain conditional FM)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.training.couplings.base import Coupled, Coupling


@dataclass(frozen=True)
class Independent(Coupling):
    """Keeps the pairs as drawn: `(x_0[i], x_1[i])` with `x_0` independent of `x_1`.

    >>> Independent().pair(x_0, x_1, generator=gen).x_0 is x_0   # True
    """

    def pair(
        self,
        x_0: Tensor,
        x_1: Tensor,
        *,
        generator: torch.Generator,
        labels: Tensor | None = None,
    ) -> Coupled:
        return Coupled(x_0, x_1)
