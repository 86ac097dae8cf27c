"""The product state of a molecule: Gaussian positions, discrete atom types and formal charges.

A `MoleculeState` becomes the dict `{"pos" (B, N, 3), "atom_type" (B, N), "charge" (B, N),
"mask" (B, N)}`: zero-centroid positions move on an affine Gaussian path (`cond_ot`, ...),
element and charge indices on a discrete path each (`masked`: absorbing, every atom starts as the
mask token; `uniform`: random tokens), all at one time (core `ProductPath`). This is the product
path of MiDi, FlowMol and SemlaFlow; the EDM-style alternative is `OneHotEncoding`.

>>> enc = ProductEncoding(("H", "C", "N", "O", "F"), CondOT(), "masked")
>>> x_1 = enc.encode(state)                 # dict of tensors
>>> x_0 = enc.source(state.mask, gen)       # zero-centroid noise, all-mask types and charges
>>> enc.decode(x_1)                         # the same molecules
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

from flowforge.discrete import MaskedPath, ProductPath, UniformPath
from flowforge.errors import InvalidArgumentError
from flowforge.likelihood import scale_to_prior
from flowforge.paths.base import AffinePath
from flowforge_molecules.com import remove_com
from flowforge_molecules.elements import CHARGES
from flowforge_molecules.encoding import charge_hits
from flowforge_molecules.state import MoleculeState

State = dict[str, Tensor]
DISCRETE_KEYS = ("atom_type", "charge")
DiscreteKind = Literal["masked", "uniform"]


@dataclass(frozen=True)
class ProductEncoding:
    """Convert molecules to product states and back; owns the `ProductPath` over them."""

    elements: tuple[str, ...]
    pos_path: AffinePath
    discrete: DiscreteKind = "masked"
    charges: tuple[int, ...] = CHARGES

    @cached_property
    def path(self) -> ProductPath:
        kind = {"masked": MaskedPath, "uniform": UniformPath}[self.discrete]
        return ProductPath(
            {
                "pos": self.pos_path,
                "atom_type": kind(vocab_size=len(self.elements)),
                "charge": kind(vocab_size=len(self.charges)),
            }
        )

    @property
    def num_states(self) -> tuple[int, int]:
        """Token ids an atom's type and charge may hold (the mask token included)."""
        return (self.path.paths["atom_type"].num_states, self.path.paths["charge"].num_states)

    @property
    def num_features(self) -> int:
        """Width of the one-hot node input a network reads: 3 coordinates, type and charge."""
        return 3 + sum(self.num_states)

    def encode(self, state: MoleculeState) -> State:
        """The product state of `state`: zero-centroid positions, type and charge indices."""
        hit = charge_hits(state, self.charges)
        return {
            "pos": remove_com(state.pos.float(), state.mask),
            "atom_type": state.atom_type * state.mask,
            "charge": hit.long().argmax(-1) * state.mask,
            "mask": state.mask,
        }

    def decode(self, x: State) -> MoleculeState:
        """The molecules of a finished product state (every real atom unmasked)."""
        mask = x["mask"].bool()
        for key, vocab in zip(DISCRETE_KEYS, (len(self.elements), len(self.charges)), strict=True):
            if bool(((x[key] >= vocab) & mask).any()):
                raise InvalidArgumentError(
                    f"the state still holds masked {key} tokens on real atoms; decode the end "
                    "of a solve (its last step unmasks every atom)"
                )
        index = torch.tensor(self.charges, device=mask.device)
        pos = x["pos"] * mask.unsqueeze(-1).to(x["pos"].dtype)
        return MoleculeState(pos, x["atom_type"] * mask, index[x["charge"] * mask] * mask, mask)

    def source(
        self, mask: Tensor, generator: torch.Generator | None = None, t0: float | None = None
    ) -> State:
        """Noise on `mask (B, N)`: zero-centroid standard normal positions (times the pos path's
        sigma(t0) when `t0` is given), each discrete path's source tokens."""
        b, n = mask.shape
        template = {
            "pos": torch.zeros(b, n, 3, device=mask.device),
            "atom_type": torch.zeros(b, n, dtype=torch.long, device=mask.device),
            "charge": torch.zeros(b, n, dtype=torch.long, device=mask.device),
            "mask": mask,
        }
        x = self.path.source(template, generator)
        pos = remove_com(x["pos"], mask)
        if t0 is not None:
            pos = scale_to_prior(self.pos_path, t0, pos)
        return {**x, "pos": pos}
