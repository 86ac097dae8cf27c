"""How many atoms each generated molecule gets: the training histogram, or given counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class AtomCounts:
    """A distribution over atom counts `1..max_atoms`: `probs (max_atoms + 1,)`, entry n for n.

    >>> counts = AtomCounts.from_mask(train_state.mask)
    >>> n = counts.sample(64, generator)              # (64,) int64
    >>> mask = counts.mask(n, max_atoms=29)           # (64, 29) bool
    """

    probs: Tensor

    @classmethod
    def from_mask(cls, mask: Tensor) -> AtomCounts:
        """The empirical histogram of the atom counts of `mask (M, N)`."""
        n = mask.sum(1)
        hist = torch.bincount(n, minlength=mask.shape[1] + 1).double()
        return cls(hist / hist.sum())

    @classmethod
    def fixed(cls, n: int, max_atoms: int) -> AtomCounts:
        """Always `n` atoms."""
        if not 1 <= n <= max_atoms:
            raise InvalidArgumentError(f"atom count {n} must lie in [1, {max_atoms}]")
        probs = torch.zeros(max_atoms + 1, dtype=torch.float64)
        probs[n] = 1.0
        return cls(probs)

    @property
    def max_atoms(self) -> int:
        return self.probs.shape[0] - 1

    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """`count` atom counts `(count,)` int64 drawn from the histogram."""
        gen_device = generator.device if generator is not None else "cpu"
        return torch.multinomial(
            self.probs.to(gen_device), count, replacement=True, generator=generator
        ).cpu()

    @staticmethod
    def mask(n: Tensor, max_atoms: int) -> Tensor:
        """`(B, max_atoms)` bool with the first `n[b]` atoms real."""
        return torch.arange(max_atoms, device=n.device)[None, :] < n[:, None]
