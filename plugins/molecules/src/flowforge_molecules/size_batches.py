"""Training batches of molecules with one atom count, cut to that width.

A dense equivariant network costs `N^2` per molecule at the padded width `N`: QM9 pads to 29
atoms while its molecules average 18, so a random batch spends some 60% of the pair work on
padding. Drawing every molecule of a batch from one atom count, picked as the count of a
uniformly drawn molecule, keeps each molecule's chance of being drawn `1 / M` (the count `k` is
picked with probability `M_k / M`, then one of its `M_k` molecules) and lets the batch be cut to
`k` columns: about `E[n^2] / N^2 = 0.4` of the pair work on QM9.

>>> rows = SizeBatches(train_mask).draw(256, generator)   # (256,) molecule indices, one size
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError


class SizeBatches:
    """Draw batches of one atom count from molecules with atom `mask (M, N)` (real atoms first)."""

    def __init__(self, mask: Tensor):
        self.n_atoms = mask.sum(1)
        first = torch.arange(mask.shape[1], device=mask.device) < self.n_atoms[:, None]
        if not torch.equal(first, mask.bool()):
            raise InvalidArgumentError(
                "size batches cut molecules to their atom count, so each molecule's real atoms "
                "must come first in the padding (MoleculeState.from_molecules pads that way)"
            )
        self.order = torch.argsort(self.n_atoms, stable=True)
        self.counts = torch.bincount(self.n_atoms, minlength=mask.shape[1] + 1)
        self.start = torch.cumsum(self.counts, 0) - self.counts

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        """`(n,)` molecule indices, all of the atom count of one uniformly drawn molecule."""
        device = self.order.device
        anchor = torch.randint(0, len(self.order), (1,), generator=generator, device=device)
        k = self.n_atoms[anchor]
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        pick = (u * self.counts[k]).long().clamp_max(self.counts[k] - 1)
        return self.order[self.start[k] + pick]


def cut_width(x: dict[str, Tensor]) -> dict[str, Tensor]:
    """The per-atom tensors `(B, N, ...)` of `x` (with its atom `mask`) cut to the widest
    molecule's atoms; one host read of that width."""
    width = int(x["mask"].sum(1).max())
    return {k: v[:, :width] for k, v in x.items()}


def draw_rows(
    data: dict[str, Tensor], n: int, generator: torch.Generator, sizes: SizeBatches | None
) -> tuple[Tensor, dict[str, Tensor]]:
    """`(idx (n,), rows)`: `n` molecules drawn uniformly from `data` (with its atom `mask`),
    or with `sizes`, one atom count per batch and the rows cut to that width."""
    if sizes is None:
        mask = data["mask"]
        idx = torch.randint(0, len(mask), (n,), generator=generator, device=mask.device)
        return idx, {k: v[idx] for k, v in data.items()}
    idx = sizes.draw(n, generator)
    return idx, cut_width({k: v[idx] for k, v in data.items()})
