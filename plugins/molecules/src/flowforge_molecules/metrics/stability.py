"""Atom and molecule stability (EDM): bonds from distances, valences from the bond orders.

An atom is stable when the sum of its bond orders (from `bond_tables.bond_order`) is one of its
element's allowed valences; a molecule is stable when all its atoms are. EDM ignores formal
charges (`use_charges=False`, the number the literature reports); the charge-aware variant
accepts the valences of charged atoms (N+ with 4 bonds, O- with 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flowforge_molecules.elements import symbol
from flowforge_molecules.metrics.bond_tables import allowed_valences, bond_matrix

Molecule = tuple[Sequence[int], np.ndarray, Sequence[int]]


def atom_stability(numbers: Sequence[int], pos: np.ndarray, charges=None, use_charges=False):
    """Per-atom stability `(n,)` bool of one molecule (atomic numbers, positions in Angstrom)."""
    symbols = [symbol(z) for z in numbers]
    valence = bond_matrix(symbols, np.asarray(pos, dtype=np.float64)).sum(1)
    charges = charges if (use_charges and charges is not None) else [0] * len(symbols)
    return np.array(
        [
            int(v) in allowed_valences(s, int(q))
            for s, v, q in zip(symbols, valence, charges, strict=True)
        ],
        dtype=bool,
    )


def stability(molecules: Sequence[Molecule], use_charges: bool = False) -> dict[str, float]:
    """`atom_stability` (fraction of stable atoms) and `mol_stability` over `molecules`, each
    `(atomic numbers, pos (n, 3), formal charges)`."""
    stable_atoms = total_atoms = stable_mols = 0
    for numbers, pos, charges in molecules:
        ok = atom_stability(numbers, pos, charges, use_charges)
        stable_atoms += int(ok.sum())
        total_atoms += len(ok)
        stable_mols += int(ok.all())
    n = max(len(molecules), 1)
    return {
        "atom_stability": stable_atoms / max(total_atoms, 1),
        "mol_stability": stable_mols / n,
    }
