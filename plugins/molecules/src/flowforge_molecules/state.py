"""The structured molecule state: padded `pos`, `atom_type`, `charge`, `mask` (+ properties).

Padding atoms carry `mask = False` and zeros everywhere; every computation on a state reads the
mask, nothing guesses the atom count from the values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge_molecules.elements import atomic_number, symbol
from flowforge_molecules.molecules import Molecules


@dataclass(frozen=True)
class MoleculeState:
    """A batch of molecules as padded tensors.

    `pos (B, N, 3)` Angstrom; `atom_type (B, N)` int64 indices into the element vocabulary;
    `charge (B, N)` int64 formal charges; `mask (B, N)` bool, True for real atoms;
    `properties (B, P)` float or None.

    >>> state = MoleculeState.from_molecules(mols, ("H", "C", "N", "O", "F"))
    >>> state.pos.shape, state.mask.sum(1)           # (M, 29, 3), atoms per molecule
    """

    pos: Tensor
    atom_type: Tensor
    charge: Tensor
    mask: Tensor
    properties: Tensor | None = None

    def __len__(self) -> int:
        return self.pos.shape[0]

    @property
    def n_atoms(self) -> Tensor:
        return self.mask.sum(1)

    def index(self, idx: Tensor) -> MoleculeState:
        """The molecules at `idx` (a 1-D index tensor)."""
        props = None if self.properties is None else self.properties[idx]
        return MoleculeState(
            self.pos[idx], self.atom_type[idx], self.charge[idx], self.mask[idx], props
        )

    def to(self, device: torch.device | str) -> MoleculeState:
        props = None if self.properties is None else self.properties.to(device)
        return MoleculeState(
            self.pos.to(device),
            self.atom_type.to(device),
            self.charge.to(device),
            self.mask.to(device),
            props,
        )

    def with_properties(self, properties: Tensor | None) -> MoleculeState:
        return replace(self, properties=properties)

    @classmethod
    def from_molecules(
        cls, mols: Molecules, elements: tuple[str, ...], max_atoms: int | None = None
    ) -> MoleculeState:
        """Pad `mols` to `max_atoms` (default: the largest molecule) over vocabulary `elements`."""
        n = int(mols.n_atoms.max()) if max_atoms is None else max_atoms
        if len(mols) and int(mols.n_atoms.max()) > n:
            raise InvalidArgumentError(
                f"a molecule has {int(mols.n_atoms.max())} atoms, more than max_atoms={n}; "
                "raise max_atoms"
            )
        lookup = np.full(128, -1, dtype=np.int64)
        for i, s in enumerate(elements):
            lookup[atomic_number(s)] = i
        types = lookup[mols.numbers.astype(np.int64)]
        if (types < 0).any():
            missing = sorted({symbol(z) for z in mols.numbers[types < 0]})
            raise InvalidArgumentError(
                f"the molecules contain elements {missing} outside the vocabulary "
                f"{list(elements)}; add them to the dataset's `elements`"
            )
        m = len(mols)
        rows = np.repeat(np.arange(m), mols.n_atoms)
        cols = np.arange(len(mols.numbers)) - np.repeat(mols.atom_offsets[:-1], mols.n_atoms)
        pos = torch.zeros(m, n, 3, dtype=torch.float32)
        pos[rows, cols] = torch.from_numpy(mols.pos.astype(np.float32))
        atom_type = torch.zeros(m, n, dtype=torch.long)
        atom_type[rows, cols] = torch.from_numpy(types)
        charge = torch.zeros(m, n, dtype=torch.long)
        charge[rows, cols] = torch.from_numpy(mols.charge.astype(np.int64))
        mask = torch.zeros(m, n, dtype=torch.bool)
        mask[rows, cols] = True
        props = torch.from_numpy(mols.properties).float() if mols.properties.shape[1] else None
        return cls(pos, atom_type, charge, mask, props)

    def to_lists(self, elements: tuple[str, ...]) -> list[tuple[list[int], np.ndarray, list[int]]]:
        """Each molecule as `(atomic numbers, pos (n, 3) float64, formal charges)`, real atoms."""
        numbers = np.array([atomic_number(s) for s in elements])
        mask, types = self.mask.cpu().numpy(), self.atom_type.cpu().numpy()
        pos, charge = self.pos.detach().cpu().double().numpy(), self.charge.cpu().numpy()
        return [
            (numbers[types[b][keep]].tolist(), pos[b][keep], charge[b][keep].tolist())
            for b, keep in enumerate(mask)
        ]

    @classmethod
    def cat(cls, states: list[MoleculeState]) -> MoleculeState:
        """The batches of `states` (one atom width) one after the other."""
        props = [s.properties for s in states]
        return cls(
            torch.cat([s.pos for s in states]),
            torch.cat([s.atom_type for s in states]),
            torch.cat([s.charge for s in states]),
            torch.cat([s.mask for s in states]),
            None if any(q is None for q in props) else torch.cat(props),
        )
