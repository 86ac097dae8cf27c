"""The EDM-style continuous state: positions and scaled one-hot atom types and charges.

One tensor `x (B, N, 3 + K + C)` holds each atom's zero-centroid position, its element one-hot
times `type_scale` and its formal-charge one-hot times `charge_scale` (Hoogeboom et al. 2022 use
0.25 for types). A Gaussian path then moves all of it at once, so every core solver, guidance
method and time grid works on molecules unchanged; the atom mask travels beside it. Decoding takes
the argmax of each one-hot block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge_molecules.com import remove_com
from flowforge_molecules.elements import CHARGES
from flowforge_molecules.state import MoleculeState


def charge_hits(state: MoleculeState, charges: tuple[int, ...]) -> Tensor:
    """`(B, N, C)` bool: each atom's formal charge matched against the vocabulary `charges`.

    Raises when a real atom's charge is outside the vocabulary (padding atoms are not checked).
    """
    hit = state.charge.unsqueeze(-1) == torch.tensor(charges, device=state.charge.device)
    bad = state.mask & ~hit.any(-1)
    if bool(bad.any()):
        raise InvalidArgumentError(
            f"formal charges {sorted(set(state.charge[bad].tolist()))} are outside the charge "
            f"vocabulary {list(charges)}"
        )
    return hit


@dataclass(frozen=True)
class OneHotEncoding:
    """Encode a `MoleculeState` as one tensor and back.

    >>> enc = OneHotEncoding(("H", "C", "N", "O", "F"))
    >>> x = enc.encode(state)                 # (B, N, 11)
    >>> back = enc.decode(x, state.mask)      # same atoms, types and charges
    """

    elements: tuple[str, ...]
    charges: tuple[int, ...] = CHARGES
    type_scale: float = 0.25
    charge_scale: float = 0.25

    @property
    def num_types(self) -> int:
        return len(self.elements)

    @property
    def num_features(self) -> int:
        """Features per atom: 3 coordinates, the type and the charge one-hots."""
        return 3 + len(self.elements) + len(self.charges)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`(pos (B, N, 3), type block (B, N, K), charge block (B, N, C))` of `x`."""
        k = self.num_types
        return x[..., :3], x[..., 3 : 3 + k], x[..., 3 + k :]

    def encode(self, state: MoleculeState) -> Tensor:
        """`x (B, N, F)` of `state`: zero-centroid positions and scaled one-hots, 0 on padding."""
        hit = charge_hits(state, self.charges)
        real = state.mask
        m = real.unsqueeze(-1).float()
        types = F.one_hot(state.atom_type, self.num_types).float() * self.type_scale
        charges = hit.float() * self.charge_scale
        pos = remove_com(state.pos.float(), real)
        return torch.cat([pos, types * m, charges * m], dim=-1)

    def decode(self, x: Tensor, mask: Tensor) -> MoleculeState:
        """The molecules of `x (B, N, F)`: argmax of each one-hot block on the real atoms;
        positions as they are (a solve keeps them zero-centroid)."""
        pos, types, charges = self.split(x)
        index = torch.tensor(self.charges, device=x.device)
        atom_type = types.argmax(-1) * mask
        charge = index[charges.argmax(-1)] * mask
        real = mask.to(pos.dtype).unsqueeze(-1)
        return MoleculeState(pos * real, atom_type, charge, mask.bool())

    def project(self, x: Tensor, mask: Tensor) -> Tensor:
        """`x` on the state's subspace: zero-centroid positions, every feature 0 on padding."""
        pos, rest = x[..., :3], x[..., 3:]
        return torch.cat([remove_com(pos, mask), rest * mask.unsqueeze(-1).to(x.dtype)], -1)

    def noise(
        self, mask: Tensor, generator: torch.Generator | None = None, dtype=torch.float32
    ) -> Tensor:
        """Standard normal `(B, N, F)` projected to the state's subspace."""
        shape = (*mask.shape, self.num_features)
        z = torch.randn(shape, generator=generator, dtype=dtype, device=mask.device)
        return self.project(z, mask)
